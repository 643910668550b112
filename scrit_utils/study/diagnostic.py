"""The injected-error diagnostic: a critic's CC-Acc where the deliberately incorrect solutions carry the world's
injected errors, beside the same critic on the natural-error claim set.

The toy benchmark's claim sets hold natural errors only (:mod:`scrit_utils.worlds.arith_bench`); beside them it
writes a labelled diagnostic with the same problems in the same order, each wrong solution made by the world's
rule-based injector (:func:`scrit_utils.worlds.arith_bench.diagnostic_dir`). A critic fine-tuned on the
injector's bugs (the ``bug_injection_world`` arm: external supervision) meets its own training distribution
there, and the model's own bugs (``bug_injection``) may or may not look like it: the README shows every
diagnosed arm on both sets (issue #24 item 1), so bug injection is seen on natural and on injected errors.

Which points are diagnosed: the base critic and the arms in ``sweeps.diagnostic_arms`` at each arm's largest
example count (notebook 05). Each is a cached stage ``sweep_diag`` keyed by the evaluation settings, the
point's evaluation and training stages (hence its model) and the base evaluation (hence its benchmark folder), with the
critiques in a resumable file written as stage 04 writes its own (``training.recorded_backends``); the items are capped per task as stage 04 caps the claim set
(``evaluation.n_items``, the same seeded positions: the same problems as the natural set's items).

Usage::

    from scrit_utils.study import diagnostic
    items = diagnostic.run(cfg_eval, model_dir, eval_st, base_st, train_st)   # {"wrong": {"ids", "task", "ok"}}
"""
from __future__ import annotations

import json

from scrit_utils import worlds
from scrit_utils.core import artifacts
from scrit_utils.core.config import StudyConfig
from scrit_utils.core.records import write_json
from scrit_utils.critique import prompts
from scrit_utils.pipeline import benchmark_eval as critic_eval, common, training

STAGE = "sweep_diag"
VERSION = "1"
SET = "wrong"  # the primary metric's set: CC-Acc on deliberately incorrect solutions


def stage(cfg_eval: StudyConfig, eval_st: artifacts.Stage, base_st: artifacts.Stage,
          train_st: artifacts.Stage | None = None) -> artifacts.Stage:
    # a trained point's critic lives in its training stage: that stage is an upstream, so the model it reads is
    # covered by the key (the evaluation stage alone names the model but does not hold it)
    ups = [base_st] if eval_st.dir == base_st.dir else [eval_st, base_st]
    ups += [train_st] if train_st is not None else []
    return artifacts.stage(STAGE, cfg_eval, training.EVAL_KEYS, VERSION, upstream=ups,
                           extra_key={"prompt_version": prompts.PROMPT_VERSION})


def items_of(cfg_eval: StudyConfig, base_st: artifacts.Stage) -> list[dict]:
    """The diagnostic's deliberately incorrect items at the claim set's capped positions."""
    world = worlds.get(cfg_eval)
    if not world.builds_benchmarks:
        raise ValueError(f"{cfg_eval.source}: sweeps.diagnostic_arms needs a world that builds its benchmarks and "
                         f"their injected-error diagnostic ({type(world).__name__} reads published ones)")
    items = world.injected_benchmark_items(training.bench_dir(base_st))[SET]
    return training._cap(items, cfg_eval.evaluation.n_items, cfg_eval.run.seed, SET)


def run(cfg_eval: StudyConfig, model: str, eval_st: artifacts.Stage, base_st: artifacts.Stage,
        train_st: artifacts.Stage | None = None) -> dict:
    """Per-item CC-Acc hits of ``model`` on the diagnostic (``{"wrong": {"ids", "task", "ok"}}``), cached.
    ``train_st``: the training stage that holds ``model`` (None for the base critic)."""
    st = stage(cfg_eval, eval_st, base_st, train_st)
    if not st.done:
        st.start_clock()
        cfg = st.record(cfg_eval)
        common.setup_torch(cfg)
        sets = {SET: items_of(cfg, base_st)}
        backend = training.recorded_backends(cfg, st, model, sets)(SET)  # stage 04's resumable critiques file
        rows = critic_eval.run_critiques(backend, sets[SET], training.eval_config(cfg), scenario=SET)
        common.release_backends()
        hits = [int(bool(r["corrected_correct"])) for r in rows]
        write_json(st.path("items.json"), {SET: {"ids": [r["id"] for r in rows], "task": [r["task"] for r in rows],
                                                 "ok": hits}})
        st.finish(counts={"items": len(rows), "cc_acc": 100.0 * sum(hits) / max(1, len(hits))})
    return json.loads((st.dir / "items.json").read_text())
