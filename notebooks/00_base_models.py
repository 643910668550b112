# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 — Toy world: tokenizer, base models, held-out benchmarks
#
# Builds (or reuses, when the committed dirs under `models/` are complete) the toy world's
# tokenizer and base "instruct" models, writes the toy benchmarks (RealCritic mix/wrong layout
# and a ProcessBench-format error-identification set) from the held-out `benchmark` split, and
# measures every base model without reference (direct prompt) and with reference (contrastive
# prompt). Recipe and seed composition: `scrit_utils/toy_models/build.py`, `models/README.md`.
#
# It is not part of the study run (`make base-models` runs it: `scrit run --profile configs/toy.yaml
# --set 'run.notebooks=["00"]'`). On a fresh clone the committed models and benchmarks are reused, so
# it only measures the four models (a few minutes on 2 cores). Opened in JupyterLab it writes its table
# to `results/interactive/tables/` unless `write_results = True` (`notebooks/README.md`).

# %% tags=["parameters"]
profile = "configs/toy.yaml"  # seed + world knobs come from here (the study profile)
models_dir = "models"
sizes = None  # None = every size in scrit_utils.toy_models.build.SIZES
bench_dir = "data/toy_benchmarks_v2_heldout"  # the committed benchmark items results/tables/base_models.md was measured on
bench_per_class = 100  # items per class when bench_dir is written (200 per critique set)
bench_generators = ["toy-409k", "toy-709k"]  # the study's generators: their sampled solutions supply natural errors
n_solve = 300  # problems for the solve-accuracy columns
sample_temperature = None  # sampled-solve columns at this temperature (None = the profile's generation.solve.temperature)
n_items = None  # cap per critique set (None = all 200; tests use a few)
build = True  # False: only measure the complete model dirs named in `sizes` (e.g. the committed v1 bases)
evaluate = True
table_stem = None  # None: results/tables/base_models (scrit run, or write_results) or results/interactive/tables/...
write_results = False  # interactive runs write to results/interactive/; True: to results/ (the committed table)
torch_threads = 2

# %%
import json
import os
import time
from pathlib import Path

import pandas as pd
import torch

from scrit_utils.toy_models import build as bm
from scrit_utils.core import config, notebook_env
from scrit_utils.toy_models.cli import config_from_profile
from scrit_utils.core.config import REPO_ROOT
from scrit_utils.worlds import arith_bench
from scrit_utils.toy_models import base_eval

os.chdir(REPO_ROOT)
torch.set_num_threads(torch_threads)
d = config_from_profile(profile)
d["out_dir"] = models_dir
if sizes:
    d["sizes"] = list(sizes)
cfg = bm.config_from_dict(d)
sample_t = config.load(profile).generation.solve.temperature if sample_temperature is None else sample_temperature
table_stem = table_stem or f"{notebook_env.results_root(write_results)}/tables/base_models"
print(f"table: {table_stem}.{{csv,md}}")
cfg

# %% [markdown]
# ## Build (skips complete model dirs; resumes an interrupted one from its checkpoint)

# %%
t0 = time.time()
paths = bm.build_base_models(cfg) if build else [Path(models_dir) / s for s in cfg.sizes]
print(f"build step took {time.time() - t0:.0f} s")
info = pd.DataFrame([{**json.loads((p / "build_info.json").read_text())["size"],
                      "n_params": json.loads((p / "build_info.json").read_text())["n_params"],
                      "train_seconds": json.loads((p / "build_info.json").read_text())["train_seconds"]}
                     for p in paths])
info

# %%
logs = {p.name: pd.read_csv(p / "train_log.csv") for p in paths}
ax = None
for name, df in logs.items():
    ax = df.plot(x="step", y="loss_solve", ax=ax, label=name, logy=True)
ax.set_ylabel("solve loss")

# %% [markdown]
# The build table: each model's size (hidden width, layers, heads), parameter count and training
# time; then each model's solve loss over its training steps (log scale), which should fall for
# every size and fall further for the larger ones.
#
# ## Held-out toy benchmarks (written once; delete the dir to regenerate)
# The critique sets (`realcritic/`: `mix` and `wrong`, and a ProcessBench-format `processbench/`) come
# from the world's held-out `benchmark` split; the summary says how many wrong solutions were sampled
# from `bench_generators` (natural errors) and how many were injected by the world's rule.

# %%
bench = Path(bench_dir)
if not (bench / "summary.json").exists():
    gens = {g: str(Path(models_dir) / g) for g in bench_generators if (Path(models_dir) / g).exists()}
    arith_bench.write_toy_benchmarks(bench, cfg.seed, bench_per_class, generators=gens, config=cfg.world)
json.loads((bench / "summary.json").read_text())

# %% [markdown]
# ## Base models: solve accuracy, CC-Acc and ProcessBench F1 without / with reference
# One row per model (the main columns are also described in `models/README.md`). The ones the study relies on:
# `solve_acc` (greedy) and `sampled_solve` at `sample_T` (the generators' temperature), `fluke_rate`
# (right answers reached through a wrong step), `cc_mix_noref` / `cc_mix_ref` (CC-Acc on the balanced
# set without and with the reference; their difference `cc_gap` is what contrastive critique gains)
# and `headroom` (how much better the model computes its own steps than it checks them without a
# reference: what SCRIT can teach). Columns ending in `_vr` use the decode-time verdict rule.

# %%
if evaluate:
    rows = []
    for p in paths:
        rows.append(base_eval.base_model_row(p, bench, seed=cfg.seed, n_solve=n_solve, config=cfg.world,
                                               n_items=n_items, sample_temperature=sample_t))
    Path(table_stem).parent.mkdir(parents=True, exist_ok=True)
    base_eval.write_base_model_table(rows, table_stem)
    display(pd.DataFrame(rows))

# %% tags=["interpretation"]
from IPython.display import Markdown, display

from scrit_utils.study import interpret

display(Markdown(interpret.base_models_00(pd.DataFrame(rows) if evaluate else None)))
