"""`scrit eval critic`: one command that generates critiques, scores them and writes results with provenance.

The numbers must equal stage 04's for the same model, items and decoding: the smoke profile's base
evaluation (critic models/toy-0.3m) is run into a scratch artifacts folder and compared row for row
(value and CI) and critique for critique -- in process through the transformers backend, and (slow)
through the OpenAI backend against a local `transformers serve`, on the toy benchmark and on RealCritic
/ ProcessBench gsm8k.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from .serve_helper import free_port, transformers_serve

from scrit_utils import cli
from scrit_utils.core import config
from scrit_utils.pipeline import critic_bench as cb
from scrit_utils.pipeline import training

REPO = Path(__file__).resolve().parents[1]
CRITIC = "models/toy-0.3m"  # configs/smoke.yaml models.critic
SMOKE = ["--max-new-tokens", "200", "--batch-size", "16", "--n-boot", "200", "--n-items", "16", "--seed", "0"]


def _scrit(capsys, *args: str) -> tuple[int, str, str]:
    rc = cli.main(["eval", "critic", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _critiques(stage_dir: Path, sets=("wrong", "mix", "own", "processbench")) -> dict[tuple[str, str], str]:
    return {(s, (r := json.loads(line))["id"]): r["text"] for s in sets
            for line in (stage_dir / f"critiques_{s}.jsonl").read_text().splitlines() if line.strip()}


def _samples(path: Path) -> dict[tuple[str, str], str]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {(r["set"], r["id"]): r["text"] for r in rows if r["set"] != "own_solve"}


def _rows(res: dict, bench: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "bench"} for r in res["rows"] if r["bench"] == bench]


# --- bad input ----------------------------------------------------------------------------------------
def test_specs_parse_and_unknown_names_list_the_known_ones():
    assert cb.parse_specs("realcritic:gsm8k+math,processbench") == [("realcritic", "gsm8k+math"),
                                                                       ("processbench", None)]
    assert cb.parse_specs(["toy:some/dir", "processbench:gsm8k"]) == [("toy", "some/dir"), ("processbench", "gsm8k")]
    with pytest.raises(cb.BenchError, match="known: realcritic, processbench, toy"):
        cb.parse_specs("realcritc")
    with pytest.raises(cb.BenchError, match="named twice"):
        cb.parse_specs("realcritic:gsm8k,realcritic:math")


def test_unknown_bench_is_one_line_listing_the_known_ones(capsys):
    rc, _, err = _scrit(capsys, "--model", CRITIC, "--bench", "realcritic,procesbench")
    assert rc == 2 and err.count("\n") == 1
    assert "unknown benchmark 'procesbench'" in err and "realcritic, processbench, toy" in err


def test_missing_data_folder_says_how_to_fetch(capsys, tmp_path):
    rc, _, err = _scrit(capsys, "--model", CRITIC, "--bench", "realcritic:gsm8k", "--data-dir", str(tmp_path))
    assert rc == 2 and err.count("\n") == 1
    assert str(tmp_path / "realcritic") in err and "scrit data fetch" in err
    (tmp_path / "realcritic").mkdir()  # the folder is there, the task file is not: the file is named
    rc, _, err = _scrit(capsys, "--model", CRITIC, "--bench", "realcritic:gsm8k", "--data-dir", str(tmp_path))
    assert rc == 2 and "gsm8k" in err and "test.jsonl" in err


def test_unknown_task_names_the_known_tasks(capsys, tmp_path):
    (tmp_path / "realcritic" / "mix_data").mkdir(parents=True)
    rc, _, err = _scrit(capsys, "--model", CRITIC, "--bench", "realcritic:gsm9k", "--data-dir", str(tmp_path))
    assert rc == 2 and "gsm9k" in err and "'gsm8k'" in err


def test_unreachable_base_url_fails_in_one_line(capsys, tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nobody listens there
    t0 = time.monotonic()
    rc, _, err = _scrit(capsys, "--model", CRITIC, "--bench", "tyo", "--backend", "openai", "--base-url", url)
    assert rc == 2 and "unknown benchmark 'tyo'" in err  # names are checked before the server
    rc, _, err = _scrit(capsys, "--model", CRITIC, "--bench", "toy:configs/smoke.yaml", "--n-items", "4",
                        "--backend", "openai", "--base-url", url)
    assert rc == 2 and err.count("\n") == 1 and url in err and "ConnectError" in err  # before any build or load
    rc, _, err = _scrit(capsys, "--model", CRITIC, "--bench", f"toy:{tmp_path}")
    assert rc == 2 and "not a toy benchmark folder" in err
    assert time.monotonic() - t0 < 30  # no retry loop against a dead address
    rc, _, err = _scrit(capsys, "--model", CRITIC, "--bench", "toy:configs/smoke.yaml", "--backend", "openai")
    assert rc == 2 and "--base-url" in err


def test_bad_numbers_and_scenarios_fail_before_the_model_loads(capsys):
    for extra, want in ((["--n-items", "0"], "--n-items must be >= 1"), (["--batch-size", "-2"], "got -2"),
                        (["--scenarios", "mix", "mine"], "unknown CC scenario(s) ['mine']")):
        rc, _, err = _scrit(capsys, "--model", "no/such-model", "--bench", "toy:configs/smoke.yaml", *extra)
        assert rc == 2 and want in err and err.count("\n") == 1, err


def test_model_digest_is_sha256_over_the_safetensors_files():
    prov = cb.model_provenance(CRITIC)
    files = sorted((REPO / CRITIC).glob("*.safetensors"))
    per_file = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert prov["safetensors_files"] == per_file and prov["source"] == "local"
    combined = hashlib.sha256("".join(f"{n}\0{d}\0" for n, d in per_file.items()).encode()).hexdigest()
    assert prov["safetensors_sha256"] == combined
    assert prov["dir_digest"] == cb.artifacts.model_digest(REPO / CRITIC)  # what the stage hashes record


# --- equality with stage 04 -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_base(tmp_path_factory):
    """Stage 04's base evaluation of configs/smoke.yaml in a scratch artifacts folder: (cfg, stage, metrics)."""
    arts = tmp_path_factory.mktemp("artifacts")
    cfg = config.load("configs/smoke.yaml", overrides={"run.artifacts_dir": str(arts)})
    st = training.eval_base_stage(cfg)
    m = training.run_eval_stage(cfg, st, cfg.models.critic, "base")
    return cfg, st, m


def test_equals_stage04_base_evaluation_on_the_smoke_profile(smoke_base, capsys, tmp_path):
    cfg, st, base = smoke_base
    out, log = tmp_path / "res.json", tmp_path / "items.jsonl"
    # the profile builds its toy benchmark again (as stage 04 does), with its own seed and n_items
    rc, stdout, err = _scrit(capsys, "--model", CRITIC, "--bench", "toy:configs/smoke.yaml", "--device", "cpu",
                             *SMOKE, "--out", str(out), "--log-samples", str(log), "--quiet",
                             "--save-own-items", str(tmp_path / "own.json"))
    assert rc == 0, err
    # the critic's own solutions: stage 04's own_items.json, item for item
    assert json.loads((tmp_path / "own.json").read_text()) == json.loads((st.dir / "own_items.json").read_text())
    res = json.loads(out.read_text())
    assert _rows(res, "toy") == base["rows"]  # values, CIs and n, exactly
    assert {r["metric"] for r in base["rows"]} == {"cc_acc_wrong", "cc_acc_mix", "cc_acc_own", "ei_f1_original",
                                                   "ei_f1_strict"}
    assert _samples(log) == _critiques(st.dir)  # every critique text, item for item
    # the same benchmark files as the stage's bench/ (checksums), and the provenance a reader needs
    bench = training.bench_folder(st.dir)  # the benchmark stage the evaluation read (04_benchmark)
    assert bench.parent.parent.name == training.BENCH_STAGE
    stage_files = {p.relative_to(bench).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                   for p in bench.rglob("*") if p.suffix in (".json", ".jsonl") and p.name != "summary.json"}
    assert {k: v for k, v in res["data"]["files"]["toy"].items()} == \
        {k: v for k, v in stage_files.items() if k in res["data"]["files"]["toy"]}
    assert len(res["data"]["files"]["toy"]) == 3
    b = res["benches"]["toy"]
    assert b["prompt"]["variant"] == cfg.generation.prompt_variant == "compact"
    assert b["decoding"]["max_new_tokens"] == 200 and b["decoding"]["temperature"] == 0.0
    assert res["model"]["safetensors_sha256"] and set(res["provenance"]) >= {"git_sha", "versions"}
    assert "torch" in res["provenance"]["versions"] and "cc_acc_mix" in stdout


def test_trained_critic_handoff_equals_stage04_trained_evaluation(smoke_base, capsys, tmp_path):
    """"Train, then evaluate the trained model": stage 04 scores a trained critic on the base evaluation's
    benchmark and the base critic's own solutions; --bench toy:<base>/bench --own-items does the same.
    (Any model dir stands in for the trained one here: toy-0.2m.)"""
    cfg, base_st, _ = smoke_base
    trained_model = str(REPO / "models" / "toy-0.2m")
    st = training.eval_trained_stage(cfg)
    stage = training.evaluate(st.record(cfg), st, trained_model, "trained", base_st=base_st)
    training.common.release_backends()
    out, log = tmp_path / "res.json", tmp_path / "items.jsonl"
    rc, _, err = _scrit(capsys, "--model", trained_model, "--bench", f"toy:{training.bench_folder(base_st.dir)}", "--device", "cpu",
                        "--own-items", str(base_st.dir / "own_items.json"), *SMOKE, "--out", str(out),
                        "--log-samples", str(log), "--quiet")
    assert rc == 0, err
    assert _rows(json.loads(out.read_text()), "toy") == stage["rows"]
    assert _samples(log) == _critiques(st.dir)
    bad = tmp_path / "short.json"
    bad.write_text(json.dumps(json.loads((base_st.dir / "own_items.json").read_text())[:3]))
    rc, _, err = _scrit(capsys, "--model", trained_model, "--bench", f"toy:{training.bench_folder(base_st.dir)}", "--own-items",
                        str(bad), *SMOKE, "--quiet")
    assert rc == 2 and "solutions for 3 of the 16 toy mix items" in err


def test_toy_profile_build_matches_n_items_and_seed():
    ctx = cb.Context(seed=0, n_items=6)
    (b,) = cb.load_benches("toy:configs/smoke.yaml", ctx)
    assert {k: len(v) for k, v in b.sets.items()} == {"wrong": 3, "mix": 6, "processbench": 6}
    assert set(b.files) == {"realcritic/mix_data/arith/test.jsonl", "realcritic/wrong_data/arith/test.jsonl",
                            "processbench/arith.json"}
    assert b.info["profile"] == "configs/smoke.yaml" and b.variant == "compact"
    (again,) = cb.load_benches("toy:configs/smoke.yaml", ctx)
    assert again.sets == b.sets and again.files == b.files  # a seeded build: the same items and bytes


# --- through the OpenAI backend against `transformers serve` (slow) ---------------------------------
@pytest.fixture(scope="module")
def served_critic(tmp_path_factory):
    """`transformers serve models/toy-0.3m` on 127.0.0.1; yields the base URL."""
    with transformers_serve(CRITIC, tmp_path_factory.mktemp("serve") / "serve.log", cwd=REPO) as url:
        yield url


@pytest.mark.slow
def test_openai_backend_equals_stage04_on_the_toy_benchmark(smoke_base, served_critic, capsys, tmp_path):
    _, st, base = smoke_base
    out, log = tmp_path / "res.json", tmp_path / "items.jsonl"
    rc, _, err = _scrit(capsys, "--model", CRITIC, "--bench", f"toy:{training.bench_folder(st.dir)}", "--backend", "openai",
                        "--base-url", served_critic, *SMOKE, "--out", str(out), "--log-samples", str(log), "--quiet")
    assert rc == 0, err
    res = json.loads(out.read_text())
    assert _rows(res, "toy") == base["rows"]
    assert _samples(log) == _critiques(st.dir)
    assert res["backend"]["kind"] == "openai" and res["backend"]["base_url"] == served_critic


@pytest.mark.slow
def test_openai_backend_on_realcritic_gsm8k_equals_stage04(shared_data, served_critic, capsys, tmp_path):
    """RealCritic gsm8k (+ ProcessBench gsm8k) through the OpenAI backend, against stage 04 of a real-data
    profile (configs/qwen2.5-7b.yaml) run with the toy critic on CPU: same 3-item samples, same critiques."""
    n, max_new = 3, 64
    over = {"run.artifacts_dir": str(tmp_path / "artifacts"), "models.critic": CRITIC, "generation.backend": "transformers",
            "generation.device": "cpu", "generation.dtype": "auto", "generation.batch_size": 16,
            "generation.evaluation.max_new_tokens": max_new, "evaluation.benchmarks": ["gsm8k"],
            "evaluation.processbench": ["gsm8k"], "evaluation.n_items": n, "evaluation.bootstrap.n_resamples": 200,
            "run.torch_threads": 1}
    cfg = config.load("configs/qwen2.5-7b.yaml", overrides=over)
    st = training.eval_base_stage(cfg)
    base = training.run_eval_stage(cfg, st, cfg.models.critic, "base")
    out, log = tmp_path / "res.json", tmp_path / "items.jsonl"
    rc, _, err = _scrit(capsys, "--model", CRITIC, "--bench", "realcritic:gsm8k,processbench:gsm8k", "--backend",
                        "openai", "--base-url", served_critic, "--data-dir", str(shared_data), "--max-new-tokens",
                        str(max_new), "--n-items", str(n), "--n-boot", "200", "--out", str(out), "--log-samples",
                        str(log), "--quiet")
    assert rc == 0, err
    res = json.loads(out.read_text())
    assert _samples(log) == _critiques(st.dir)  # 3 items x (wrong, mix, own, processbench)
    got = _rows(res, "realcritic") + _rows(res, "processbench")
    # stage 04 attaches no reference answers to ProcessBench (strict skipped); the command does, from the data folder
    assert [r for r in got if r["metric"] != "ei_f1_strict"] == base["rows"]
    assert any(r["metric"] == "ei_f1_strict" for r in got)
    assert res["benches"]["realcritic"]["n_items"] == {"own_solve": n, "wrong": n, "mix": n, "own": n}
    files = res["data"]["files"]["realcritic"]
    assert files["realcritic/mix_data/gsm8k/test.jsonl"] == \
        hashlib.sha256((shared_data / "realcritic/mix_data/gsm8k/test.jsonl").read_bytes()).hexdigest()
    assert "processbench/gsm8k.json" in res["data"]["files"]["processbench"]


def test_gpu_md_commands_parse():
    """The commands of docs/GPU.md's "Evaluate a critic" section parse, and their --bench names are known."""
    import re
    import shlex

    text = (REPO / "docs" / "GPU.md").read_text()
    section = text.split("## Evaluate a critic", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    cmds = [shlex.split(line, comments=True) for line in block.splitlines() if line.strip().startswith("scrit eval")]
    assert len(cmds) == 2
    for argv in cmds:
        args = cli.build_parser().parse_args(argv[1:])
        assert args.eval_command == "critic" and args.backend == "vllm"
        assert [n for n, _ in cb.parse_specs(args.bench)] == ["realcritic", "processbench"]
    assert cli.build_parser().parse_args(cmds[1][1:]).model == "runs/qwen2.5-7b/model"


def test_an_evaluation_with_continuous_batching_queues_every_set_at_once(smoke_base, tmp_path, monkeypatch):
    """With parallel > 1 (here continuous batching), training.evaluate generates every set's critiques in one queue
    (training.prefetch_critiques) into the files critic_eval.evaluate then reads back without generating: the
    texts and rows of static batches, set by set."""
    from scrit_utils.core import artifacts
    from scrit_utils.pipeline import common

    cfg, base_st, _ = smoke_base
    model = str(REPO / "models" / "toy-0.2m")
    live_cfg = config.load("configs/smoke.yaml", overrides={"run.artifacts_dir": cfg.run.artifacts_dir,
                                                             "generation.max_num_seqs": 8})
    runs = {}
    for name, c in (("static", cfg), ("live", live_cfg)):
        files, new = [], []
        many, one = common.generate_files_resumable, common.generate_resumable
        monkeypatch.setattr(common, "generate_files_resumable",
                            lambda be, sets, *a, **k: files.append(len(sets)) or many(be, sets, *a, **k))
        monkeypatch.setattr(common, "generate_resumable", lambda *a, **k: new.append(one(*a, **k)) or new[-1])
        st = artifacts.stage(f"eval_{name}", c, ("run.seed",), "test", root=tmp_path)
        rows = training.evaluate(c, st, model, "trained", base_st=base_st)["rows"]
        common.release_backends()
        monkeypatch.undo()
        runs[name] = (rows, _critiques(st.dir), files, new)
    (rows, texts, files, new), (live_rows, live_texts, live_files, live_new) = runs["static"], runs["live"]
    assert live_texts == texts and live_rows == rows and len(texts) > 40
    assert files == [1, 1, 1, 1] and min(new) > 0  # static batches: set by set
    assert live_files[0] == 4 and live_new == [0, 0, 0, 0]  # all four sets queued first; then nothing left to do
