# Two entry points (see README): `make study` and `make test`. Both create .venv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup study study-seed1 test test-fast base-models lab data clean-artifacts

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (or run: make PY=python3 ...)"; exit 1; }
	mkdir -p $(VENV) && date +%s > $(VENV)/.install_started
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch first, from the local wheel; everything after sees it satisfied and pulls no CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,serve,distributed]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	# seconds this build took and when it finished (results/timing.md adds it to the run's time)
	echo "$$(( $$(date +%s) - $$(cat $(VENV)/.install_started) )) $$(date -u +%Y-%m-%dT%H:%M:%SZ)" > $(VENV)/.install_seconds
	touch $(STAMP)

setup: $(STAMP)

study: $(STAMP)
	$(BIN)/scrit run --profile configs/toy-v3.yaml

# issue #14's robustness run: the core design on bases rebuilt with build seed 1 (models/seed1/, committed; the
# builder skips complete model dirs). They share the seed-0 tokenizer, so only the bases' training differs.
study-seed1: $(STAMP)
	mkdir -p models/seed1 && cp -rn models/tokenizer models/seed1/
	$(BIN)/scrit build-base-models --profile configs/base_models/v2_world.yaml --seed 1 --out models/seed1 --jobs 2
	$(BIN)/scrit run --profile configs/toy-seed1.yaml

# everything (what CI runs, 8-11 min with the venv): unit tests plus the end-to-end runs marked slow
test: $(STAMP)
	$(BIN)/python -m pytest -q

# the inner loop (< 2 min): the unit tests only, without the tests marked slow (papermill, training, servers)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# trains missing model dirs (delete models/toy-* to rebuild), then notebook 00 writes the toy
# benchmarks (when data/toy_benchmarks is absent) and results/tables/base_models.{csv,md}
base-models: $(STAMP)
	$(BIN)/scrit build-base-models --profile configs/toy.yaml
	$(BIN)/scrit run --profile configs/toy.yaml --set 'run.notebooks=["00"]'

# JupyterLab on the project's venv, serving notebooks/. JUPYTER_CONFIG_PATH puts .jupyter/ on Jupyter's config
# search path (the user's own ~/.jupyter still applies): its labconfig/default_setting_overrides.json (written by
# `jupytext-config set-default-viewer python`) makes "Jupytext Notebook" the default viewer of .py files, so a double
# click opens the jupytext notebooks as notebooks; notebooks/jupytext.toml keeps a save from rewriting their headers.
lab: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[lab]'
	JUPYTER_CONFIG_PATH="$(CURDIR)/.jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" $(BIN)/jupyter lab notebooks/

# the real evaluation data (RealCritic, ProcessBench, GSM8K, Qwen2.5-Math sets; ~21 MB) from their pinned public
# commits, sha256-checked, into DATA_DIR (default: $$SCRIT_DATA_DIR, else ../shared/data when present, else data/real)
data: $(STAMP)
	$(BIN)/scrit data fetch $(if $(DATA_DIR),--data-dir $(DATA_DIR))

clean-artifacts:
	rm -rf artifacts/
