"""Notebook 04's view of one SCRIT loop: run stage 04 (fine-tune, evaluate base and trained critic)
and report the training set, the loss and base vs trained per metric with paired 95% CIs.

The stages (:mod:`scrit_utils.pipeline.training`) write files; this module reads them and builds the
tables, figures and ``runs/<profile>/04_metrics.json``::

    from scrit_utils.study import loop
    rep = loop.run(cfg)          # cached stages are reused
"""
from __future__ import annotations

import json

from scrit_utils.core import artifacts, config as _config, provenance
from scrit_utils.core.config import StudyConfig
from scrit_utils.pipeline import common, training, validation
from scrit_utils.study import claims as study_report, figures


def run(cfg: StudyConfig) -> common.StageReport:
    """Stage 04 for notebook 04: fine-tune (or reuse), evaluate base and trained critic
    (:func:`training.run_eval`), then :func:`report`."""
    train_st = training.run_train(cfg)
    return report(cfg, train_st, training.run_eval(cfg))


def report(cfg: StudyConfig, train_st: artifacts.Stage, metrics: dict) -> common.StageReport:
    """What notebook 04 shows: the training set and loss, base vs trained per metric with paired
    95% CIs and MDE (tables/figures saved under ``results/``), and ``runs/<profile>/04_metrics.json``
    (``metrics`` + the paired differences + this run's stamp, paths scrubbed)."""
    import pandas as pd

    rep = common.StageReport(train_st, train_st.manifest["counts"])
    sft = validation.load_sft(train_st.up(validation.STAGE))
    t = cfg.training
    rep.examples["sft"] = pd.DataFrame([{"label_correct": e.label_correct, "input": e.prompt[-1]["content"][:60],
                                         "target": e.completion[:80]} for e in sft[:4]])
    rep.examples["recipe"] = (
        f"{len(sft)} examples ({sum(e.label_correct for e in sft)} critiques of correct solutions); "
        f"{'LoRA r=' + str(t.lora.r) if t.use_lora else 'full fine-tuning'}, lr {t.learning_rate}, "
        f"{'max_steps ' + str(t.max_steps) if t.max_steps > 0 else str(t.num_train_epochs) + ' epochs'}, "
        f"batch {t.per_device_train_batch_size}")
    log = json.loads((train_st.dir / "train_log.json").read_text())
    curve = [[r["step"], r["loss"]] for r in log if "loss" in r and "step" in r]
    rep.examples["loss"] = f"{len(curve)} logged loss values (training.logging_steps = {t.logging_steps})"
    fig = figures.loss_figure({f"{len(sft)} examples, lr {t.learning_rate:g}": curve})
    if fig is not None:
        rep.figure(cfg, "04_training_loss", fig)
    b = cfg.evaluation.bootstrap
    scores, diffs = study_report.loop_frames(study_report.loop_items(cfg), b.n_resamples, b.seed)
    rep.table(cfg, "04_base_vs_trained", study_report.loop_table(scores, diffs))
    rep.figure(cfg, "04_base_vs_trained", figures.base_vs_trained_figure(scores, diffs))
    rep.examples["diffs"] = diffs
    out = _config.resolve_path(cfg.run.results_dir) / "runs" / cfg.run.name / "04_metrics.json"
    record = {"run": provenance.run_stamp(cfg), "paired": diffs.to_dict("records"), **metrics}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(provenance.scrub(json.dumps(record, indent=1), provenance.path_replacements(cfg)) + "\n")
    rep.examples["metrics_file"] = (f"wrote {out.name}; stage {training.eval_trained_stage(cfg).hash}, "
                                    f"computed at git {metrics['provenance']['git_sha']}")
    return rep
