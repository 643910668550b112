"""Scaling sweeps (notebook 05) and ablations (notebook 06) built from the loop's stage functions.

Every study point is "a self-training set + an SFT seed -> a fine-tuned critic -> its metrics":

- the self-training data come from the loop's stages 01-03 (:mod:`data`, :mod:`self_critic`,
  :mod:`validation`) run with config overrides, so shared upstream work runs once (stage cache);
- the training set of a point is selected here from a finished stage-03 output (nested prefixes
  for data sizes, filters for the ablations) -- no regeneration is needed for any ablation,
  because stage 03 records every check's outcome for every critique (``meta.all_checks``);
- SFT uses :func:`scrit_utils.pipeline.training.train` for ``training.num_train_epochs`` (the paper's
  recipe: steps grow with data; ``sweeps.sft_max_steps`` <= 0) or a fixed step budget (> 0); evaluation is
  stage 04's (:func:`scrit_utils.pipeline.training.run_eval_stage`, which scores through
  :func:`scrit_utils.pipeline.benchmark_eval.evaluate`) against the base evaluation of the same critic.
  Both are cached stages (``sweep_train`` / ``sweep_eval``) keyed by the profile slice, the
  upstream hash and the selected example ids, so the same training set is trained once whichever
  sweep asks for it.

Sweeps (``sweeps`` section of the profile):

- data size: nested subsets of each critic arm's validated set (``critic_modes``, rows of
  :data:`scrit_utils.core.arms.ARMS`: contrastive = SCRIT, its baselines and controls); size 0 = the base
  critic; with ``sweeps.draw_to_fill`` an arm whose set falls short of its largest size draws more problems (its row's ``max_draws``,
  :func:`arm_data`) and is evaluated on the profile's items all the same;
- model size: SCRIT (contrastive) with each base critic in ``model_sizes``, each generating and
  validating its own critiques;
- multi-round (:mod:`scrit_utils.study.rounds`): each chain's round-(k-1) model regenerates and validates
  critiques over the same solution pool; ``sweeps.rounds_protocol`` says how round k trains.

Ablations (``ablations`` section, :data:`ABLATIONS`) at one data size, from the contrastive
stage-03 output. Toy problem families: ``short`` = at most ``easy_family_max_steps`` operations
(the arithmetic world's analogue of "GSM8K + MATH only"); difficulty = number of distinct final
answers the generators gave for the problem (paper section 4).

Usage::

    from scrit_utils.core import config
    from scrit_utils.study import sweeps
    cfg = config.load("configs/smoke.yaml")
    pts = sweeps.run_scaling(cfg)          # list of point dicts (cached stages)
    abl = sweeps.run_ablations(cfg)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from tqdm.auto import tqdm

from scrit_utils import worlds
from scrit_utils.core import arms, artifacts, config as _config
from scrit_utils.critique import prompts
from scrit_utils.critique.metrics import METRICS as _METRICS
from scrit_utils.core.config import StudyConfig
from scrit_utils.core.records import SFTExample, write_json, write_jsonl
from scrit_utils.pipeline import common, data, self_critic, training, validation
from scrit_utils.study.ablations import ABLATIONS, CHECK_SETS, AblationContext  # noqa: F401 (re-exported)
from scrit_utils.study.selection import Pool, arm_ratio, candidates, example_ids_hash, load_pool, nested_subset, next_draw  # noqa: F401
from scrit_utils.study import builds, diagnostic, item_scores, rounds, train_workers

VERSION = "3"  # train/eval stages; 2: capped data sizes are one point at their real size; 3: checked keys
SUMMARY_VERSION = "5"  # 05/06 summary stages; 3: points carry per-item scores (paired statistics); 4: new keys below;
# 5: the claims compare the arms at sweeps.model_size_data (the pre-registered claim size)
TRAIN_STAGE = "sweep_train"
EVAL_STAGE = "sweep_eval"
SCALING_STAGE = "05_scaling"
ABLATION_STAGE = "06_ablations"

#: metric key -> human label (running text); the metrics themselves: scrit_utils.critique.metrics.METRICS
METRICS = {k: m.short for k, m in _METRICS.items()}

# --- configs ---------------------------------------------------------------------------------
def with_overrides(cfg: StudyConfig, overrides: dict) -> StudyConfig:
    return _config.load_dict(_config.to_dict(cfg), cfg.source, overrides)


def arm_cfg(cfg: StudyConfig, mode: str = "contrastive", critic: str | None = None, draw: float = 1.0) -> StudyConfig:
    """Config of a data-generating arm: critique mode, critic model, sweep pair cap, problems drawn.

    The profile's own critic critiques every pair in every mode (contrastive = the loop's arm, notebooks 02-03,
    its stages shared with the sweep; the baselines need all pairs: their validation keeps far fewer);
    ``sweeps.max_pairs`` caps the arms of other critics (other base sizes, later rounds). ``draw`` > 1 draws that
    many times the profile's problems (:meth:`scrit_utils.worlds.base.World.draw_overrides`)."""
    if critic is not None and _config.model_ref(critic) == _config.model_ref(cfg.models.critic):
        critic = None
    ov: dict = {"self_critique.mode": mode}
    if critic is not None:
        ov["models.critic"] = critic
    if cfg.sweeps.max_pairs is not None and critic is not None:  # the cap grows with the problems drawn
        ov["self_critique.max_pairs"] = cfg.sweeps.max_pairs if draw <= 1 else math.ceil(cfg.sweeps.max_pairs * draw)
    if draw > 1:
        ov.update(worlds.get(cfg).draw_overrides(draw))
    return with_overrides(cfg, ov)


def point_cfg(cfg: StudyConfig, seed: int) -> StudyConfig:
    """SFT seed, fixed step budget and sweep eval size on top of an arm config."""
    # sft_max_steps <= 0: every point trains training.num_train_epochs, so steps grow with data (the paper's recipe)
    ov: dict = {"training.seed": seed, "training.max_steps": cfg.sweeps.sft_max_steps if cfg.sweeps.sft_max_steps > 0 else -1}
    if cfg.sweeps.eval_items is not None:
        ov["evaluation.n_items"] = cfg.sweeps.eval_items
    if cfg.sweeps.sft_batch_size is not None:
        ov["training.per_device_train_batch_size"] = cfg.sweeps.sft_batch_size
    return with_overrides(cfg, ov)


def data_sizes(cfg: StudyConfig) -> list[int]:
    sizes = sorted(set(cfg.sweeps.data_sizes))
    if not sizes:
        raise ValueError(f"{cfg.source}: sweeps.data_sizes is empty")
    return sizes


def mode_sizes(cfg: StudyConfig, mode: str) -> list[int]:
    """Data sizes trained for one critic arm: SCRIT (the table's first row) along the whole axis, the other
    arms at ``sweeps.baseline_data_sizes`` when set (the core study compares them at the top)."""
    sizes = data_sizes(cfg)
    if mode == next(iter(arms.ARMS)) or not cfg.sweeps.baseline_data_sizes:
        return sizes
    extra = sorted(set(cfg.sweeps.baseline_data_sizes) - set(sizes))
    if extra:
        raise ValueError(f"{cfg.source}: sweeps.baseline_data_sizes {extra} are not in sweeps.data_sizes {sizes}")
    return [0, *sorted(set(cfg.sweeps.baseline_data_sizes) - {0})]


def fixed_size(cfg: StudyConfig) -> int:
    return cfg.sweeps.model_size_data or max(data_sizes(cfg))


def ablation_size(cfg: StudyConfig) -> int:
    if cfg.ablations.data_size:
        return cfg.ablations.data_size
    pos = [s for s in data_sizes(cfg) if s > 0]
    return pos[len(pos) // 2]


# --- stage 01-03 for an arm ---------------------------------------------------------------------
def prepare(cfg: StudyConfig) -> artifacts.Stage:
    """Run (or reuse) stages 01-03 for an arm config; returns the finished stage-03."""
    common.setup_torch(cfg)
    data.run(cfg, tables=False)
    self_critic.run(cfg, tables=False)
    st = validation.run(cfg, tables=False).stage
    common.release_backends()
    return st


@dataclass(frozen=True)
class ArmData:
    """An arm's validated pool and SFT candidates for the data-size sweep."""

    acfg: StudyConfig  # the arm's config as trained (with its draw)
    pool: Pool
    cands: list
    draw: float  # times the profile's problems drawn (1 = the profile's)


def arm_data(cfg: StudyConfig, mode: str, n: int, progress: Callable[[str], None] = print,
             critic: str | None = None, max_draws: float | None = None) -> ArmData:
    """Stages 01-03 of an arm (of ``critic``, default the profile's); while its SFT candidates cannot fill ``n``
    examples and its row allows (``max_draws``), more problems are drawn from the yield seen so far (each draw is
    its own cached stage chain; a world that cannot draw more keeps the profile's). The stage-03 manifest counts
    the yield. ``max_draws`` replaces the row's (the model sizes' ``sweeps.model_size_draws``)."""
    row = arms.arm(mode)
    limit = row.max_draws if max_draws is None else max_draws
    draw = 1.0
    while True:
        acfg = arm_cfg(cfg, mode, critic, draw=draw)
        pool = load_pool(prepare(acfg))
        cands = candidates(acfg, pool)
        c = pool.stage.manifest["counts"]
        progress(f"  {mode}: {len(cands)} SFT candidates from {c['critiques']} critiques (yield correct "
                 f"{c.get('yield_correct')}, incorrect {c.get('yield_incorrect')}; {draw:g}x the problems)")
        nxt = next_draw(draw, cands, n, arm_ratio(acfg), limit if cfg.sweeps.draw_to_fill else 1)
        if nxt is None or not worlds.get(cfg).draw_overrides(nxt):
            return ArmData(acfg, pool, cands, draw)
        draw = nxt


# --- train + eval of one point ------------------------------------------------------------------
def train_stage(cfg: StudyConfig, st03: artifacts.Stage, examples: Sequence[SFTExample]) -> artifacts.Stage:
    return artifacts.stage(TRAIN_STAGE, cfg, training.TRAIN_KEYS + ("run.training_workers",), VERSION, upstream=[st03],
                           extra_key={"examples": example_ids_hash(examples), "n": len(examples)})


def run_train(cfg: StudyConfig, st03: artifacts.Stage, examples: Sequence[SFTExample]) -> artifacts.Stage:
    """The point's ``sweep_train`` stage (cached), here or in a training worker: on one thread wherever it runs
    when run.training_workers > 1 (the key says how it trains)."""
    st = train_stage(cfg, st03, examples)
    if st.done:
        return st
    st.start_clock()
    cfg = st.record(cfg)  # the stage computes with a view that checks its key (scrit_utils.core.inputs)
    common.setup_torch(cfg)
    write_jsonl(st.path("examples.jsonl"), examples)
    with train_workers.threads_for(cfg):
        stats = training.train(cfg, st, examples)
    st.finish(counts=stats)
    return st


def run_base_eval(cfg_eval: StudyConfig) -> artifacts.Stage:
    """The loop's base evaluation stage for this eval config (shared by every point)."""
    st = training.eval_base_stage(cfg_eval)
    training.run_eval_stage(cfg_eval, st, cfg_eval.models.critic, "base")
    return st


def run_eval(cfg_eval: StudyConfig, train_st: artifacts.Stage) -> tuple[artifacts.Stage, dict]:
    """Score a trained critic on the base critic's benchmark items (``cfg_eval.models.critic``)."""
    base_st = run_base_eval(cfg_eval)
    st = artifacts.stage(EVAL_STAGE, cfg_eval, training.EVAL_KEYS, VERSION, upstream=[train_st, base_st],
                         extra_key={"prompt_version": prompts.PROMPT_VERSION})
    m = training.run_eval_stage(cfg_eval, st, str(training.trained_model_dir(train_st)), "trained", base_st=base_st)
    return st, m


def point_items(cfg_eval: StudyConfig, eval_st: artifacts.Stage) -> dict:
    """Per-item scores of a point on the base evaluation's items (checked against ``metrics.json``)."""
    return item_scores.from_eval(cfg_eval, eval_st.dir, training.eval_base_stage(cfg_eval).dir)


def extract(metrics: dict) -> dict[str, dict]:
    """``{metric: {value, ci_low, ci_high}}`` from an evaluation's rows (the ``mean`` row when a
    metric has several tasks; the harness's own CI), plus ``cc_mean`` = mean of the CC-Acc scenarios
    (value only). The study's statistics use the per-item scores (``items``), not these CIs."""
    by: dict[str, list[dict]] = {}
    for r in metrics["rows"]:
        by.setdefault(r["metric"], []).append(r)
    out: dict[str, dict] = {}
    for name, rows in by.items():
        mean = [r for r in rows if r["benchmark"] == "mean"]
        r = mean[0] if mean else (rows[0] if len(rows) == 1 else None)
        if r is None:
            raise ValueError(f"metric {name}: {len(rows)} task rows and no 'mean' row")
        out[name] = {"value": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]}
    cc = [out[k]["value"] for k in ("cc_acc_wrong", "cc_acc_mix", "cc_acc_own") if k in out]
    if cc:
        out["cc_mean"] = {"value": sum(cc) / len(cc), "ci_low": None, "ci_high": None}
    return out


@dataclass(frozen=True)
class Job:
    """One study point to compute: ``study`` / ``arm`` / ``x`` identify it in tables."""

    study: str  # data_size | model_size | headroom | rounds | ablation
    arm: str
    x: float
    seed: int
    cfg_train: StudyConfig | None  # None = the base critic (no training)
    cfg_eval: StudyConfig
    st03: artifacts.Stage | None = None
    examples: tuple = ()
    note: str = ""
    diagnose: bool = False  # also score on the injected-error diagnostic (sweeps.diagnostic_arms)


def run_job(job: Job) -> dict:
    row = {"study": job.study, "arm": job.arm, "x": job.x, "seed": job.seed, "note": job.note,
           "n_examples": len(job.examples), "n_correct": sum(e.label_correct for e in job.examples),
           "data_stages": _chain(job.st03)}
    if job.cfg_train is None:
        est = run_base_eval(job.cfg_eval)
        m = json.loads((est.dir / "metrics.json").read_text())
        row.update(train_stage=None, eval_stage=str(est.dir))
    elif not job.examples:
        row.update(train_stage=None, eval_stage=None, note=(job.note + "; no training examples").strip("; "))
        return {**row, "metrics": {}, "items": {}}
    else:
        tr = run_train(job.cfg_train, job.st03, job.examples)
        est, m = run_eval(job.cfg_eval, tr)
        row.update(train_stage=str(tr.dir), eval_stage=str(est.dir), sft_steps=tr.manifest["counts"].get("steps"),
                   train_log=training_log(tr))
    if job.diagnose:  # the same critic on injected errors (study/diagnostic.py)
        trained = job.cfg_train is not None
        model = str(training.trained_model_dir(tr)) if trained else job.cfg_eval.models.critic
        row["items_injected"] = diagnostic.run(job.cfg_eval, model, est, training.eval_base_stage(job.cfg_eval),
                                               tr if trained else None)
    return {**row, "metrics": extract(m), "items": point_items(job.cfg_eval, est)}


def training_log(st: artifacts.Stage) -> list[list[float]]:
    """``[[step, loss], ...]`` logged while training a point (``train_log.json``)."""
    p = st.dir / "train_log.json"
    log = json.loads(p.read_text()) if p.exists() else []
    return [[float(r["step"]), float(r["loss"])] for r in log if "loss" in r and "step" in r]


def _chain(st: artifacts.Stage | None) -> list[str]:
    """The stage dir and every upstream stage dir (for timing from the manifests)."""
    out, todo = [], [st] if st is not None else []
    while todo:
        cur = todo.pop()
        out.append(str(cur.dir))
        todo.extend(cur.upstream_stages.values())
    return out


def stage_dirs(rows: Sequence[dict]) -> list[str]:
    """Every stage directory the given points used (data, train, eval)."""
    out: set[str] = set()
    for r in rows:
        out.update(r.get("data_stages") or [])
        out.update(d for d in (r.get("train_stage"), r.get("eval_stage")) if d)
    return sorted(out)


def run_jobs(jobs: Sequence[Job], desc: str) -> list[dict]:
    train_workers.pretrain(jobs, train_stage, run_train)  # run.training_workers > 1: the points' SFT first, side by side
    out = []
    for job in tqdm(jobs, desc=desc, unit="point"):
        out.append(run_job(job))
        common.release_backends()
    return out


# --- the scaling study (05) ---------------------------------------------------------------------------
def scaling_jobs(cfg: StudyConfig, progress: Callable[[str], None] = print) -> list[Job]:
    """Prepare every arm's data (stages 01-03, cached) and list the training/eval points."""
    sw = cfg.sweeps
    jobs: list[Job] = []
    base_eval = point_cfg(cfg, sw.seeds[0])
    if set(sw.diagnostic_arms) - set(arms.ARMS):  # an arm the profile does not run is simply not diagnosed
        raise ValueError(f"{cfg.source}: sweeps.diagnostic_arms {sorted(set(sw.diagnostic_arms) - set(arms.ARMS))} "
                         f"are not arms (scrit_utils/core/arms.py: {', '.join(arms.ARMS)})")
    # data size x critic mode
    for mode in sw.critic_modes:
        progress(f"data for critic mode {mode}")
        top = max(mode_sizes(cfg, mode))
        d = arm_data(cfg, mode, top, progress)
        acfg, pool, cands = d.acfg, d.pool, d.cands
        ecfg = arm_cfg(cfg, mode)  # every arm is evaluated on the profile's items, whatever it drew
        seen: set[int] = set()
        for n in mode_sizes(cfg, mode):
            ex = tuple(nested_subset(cands, n, arm_ratio(acfg))) if n else ()
            if len(ex) in seen:
                # capped to the same subset as a smaller size: the same model again, not a new point
                # (a duplicate would also inflate the trend statistic)
                progress(f"  {mode}: size {n} skipped, only {len(ex)} examples available")
                continue
            seen.add(len(ex))
            note = f"{n} requested, {len(ex)} available" if len(ex) < n else ""
            if d.draw > 1 and n:
                note = "; ".join(x for x in (note, f"{d.draw:g}x the profile's problems drawn") if x)
            diag = bool(sw.diagnostic_arms) and (n == 0 or (mode in sw.diagnostic_arms and n == top))
            for seed in sw.seeds:
                if n == 0:
                    jobs.append(Job("data_size", mode, 0, seed, None, base_eval, diagnose=diag))
                    continue
                # x is the number of examples actually trained on
                jobs.append(Job("data_size", mode, len(ex), seed, point_cfg(acfg, seed), point_cfg(ecfg, seed),
                                pool.stage, ex, note, diagnose=diag))
    # model size
    for critic in sw.model_sizes:
        progress(f"data for model {critic}")
        jobs += fixed_size_jobs(cfg, "model_size", critic, critic, progress)
    # headroom: the build's critic size built with a smaller reference gap (after builds.build_cfg: this build's)
    for root in sw.headroom_builds:
        critic = builds.moved(cfg.models.critic, root, "models.critic", "sweeps.headroom_builds", cfg.source)
        progress(f"data for the headroom critic {critic}")
        jobs += fixed_size_jobs(cfg, "headroom", critic, root, progress)
    return jobs


def fixed_size_jobs(cfg: StudyConfig, study: str, critic: str, label: str,
                    progress: Callable[[str], None] = print) -> list[Job]:
    """Base ``critic`` and SCRIT with it at :func:`fixed_size` examples, per SFT seed (arms ``base:<label>`` and
    ``scrit:<label>``, x = its parameter count): the model-size and headroom points. With sweeps.draw_to_fill a
    critic short of the count draws more problems (up to sweeps.model_size_draws): the same example count for every
    critic; each is evaluated on the profile's items all the same."""
    sw, n_fixed = cfg.sweeps, fixed_size(cfg)
    d = arm_data(cfg, "contrastive", n_fixed, progress, critic=critic, max_draws=sw.model_size_draws)
    acfg, ecfg = d.acfg, arm_cfg(cfg, "contrastive", critic)
    ex = tuple(nested_subset(d.cands, n_fixed, acfg.validation.correct_ratio))
    x = float(model_params(critic))
    jobs = []
    for seed in sw.seeds:
        jobs.append(Job(study, f"base:{label}", x, seed, None, point_cfg(ecfg, sw.seeds[0])))
        jobs.append(Job(study, f"scrit:{label}", x, seed, point_cfg(acfg, seed), point_cfg(ecfg, seed), d.pool.stage, ex))
    return jobs


def round_jobs(cfg: StudyConfig, progress: Callable[[str], None] = print) -> list[Job]:
    """Multi-round: the chains and training sets of :func:`scrit_utils.study.rounds.plan` (``sweeps.rounds_protocol``).
    Round k's data are stages 01-03 with the chain's round-(k-1) critic over the same solution pool; the
    parents' SFT runs here to know the next critic, so this returns jobs round by round (cached)."""
    n_fixed = fixed_size(cfg)
    eval_cfg = lambda seed: point_cfg(arm_cfg(cfg, "contrastive"), seed)  # noqa: E731 - always the base's items

    def data_for(critic: str | None) -> rounds.RoundData:
        acfg = arm_cfg(cfg, "contrastive", critic)
        pool = load_pool(prepare(acfg))
        ex = nested_subset(candidates(acfg, pool), n_fixed, acfg.validation.correct_ratio)
        return rounds.RoundData(pool.stage, tuple(ex))

    def train_cfg(p: rounds.RoundPoint) -> StudyConfig:
        acfg, ov = arm_cfg(cfg, "contrastive", p.critic), rounds.train_overrides(cfg, p)
        return point_cfg(with_overrides(acfg, ov) if ov else acfg, p.seed)

    def train(p: rounds.RoundPoint) -> str:
        return str(training.trained_model_dir(run_train(train_cfg(p), p.data.stage, p.examples)))

    pts = rounds.plan(cfg, data_for, train, progress)
    base = [Job("rounds", rounds.arm_name(cfg, a), 0, s, None, eval_cfg(cfg.sweeps.seeds[0]))
            for a in cfg.sweeps.rounds_protocol.arms for s in rounds.all_seeds(cfg)]
    return base + [Job("rounds", p.arm, p.round, p.seed, train_cfg(p), eval_cfg(p.seed), p.data.stage, p.examples,
                       rounds.note(cfg, p)) for p in pts]


def model_params(path: str) -> int:
    """Parameter count from a model's config (no weights loaded)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    with __import__("torch").device("meta"):
        m = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(_config.model_ref(path)))
    return sum(p.numel() for p in m.parameters())


def run_scaling(cfg: StudyConfig, progress: Callable[[str], None] = print) -> list[dict]:
    """Every point of the sweep, once per base build (``sweeps.builds``); each row names its build."""
    rows: list[dict] = []
    for label, bcfg in builds.each(cfg):
        tag = f" ({label})" if label else ""
        if label:
            progress(f"build {label}")
        out = run_jobs(scaling_jobs(bcfg, progress), "05 sweep points" + tag)
        if bcfg.sweeps.rounds > 1:
            out += run_jobs(round_jobs(bcfg, progress), "05 rounds" + tag)
        rows += [{**r, "build": label} for r in out]
    return rows


# --- ablations (06) -------------------------------------------------------------------------------------
def ablation_jobs(cfg: StudyConfig, progress: Callable[[str], None] = print) -> list[Job]:
    ab = cfg.ablations
    names = list(ab.variants) or list(ABLATIONS)
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise ValueError(f"{cfg.source}: ablations.variants: unknown {unknown} (known: {', '.join(ABLATIONS)})")
    if "baseline" not in names:
        names = ["baseline", *names]
    n = ablation_size(cfg)
    acfg = arm_cfg(cfg, "contrastive")
    progress("data for the ablations (contrastive arm)")
    pool = load_pool(prepare(acfg))
    ratio = acfg.validation.correct_ratio
    ctx = AblationContext(cfg=cfg, acfg=acfg, pool=pool, n=n, ratio=ratio)
    variants = [v for name in names for v in ABLATIONS[name].variants(ctx)]
    jobs = []
    for label, ex in variants:
        note = f"{len(ex)} of {n} examples available" if len(ex) < n else ""
        for seed in cfg.sweeps.seeds:
            pc = point_cfg(acfg, seed)
            jobs.append(Job("ablation", label, n, seed, pc, pc, pool.stage, tuple(ex), note))
    return jobs


def run_ablations(cfg: StudyConfig, progress: Callable[[str], None] = print) -> list[dict]:
    return run_jobs(ablation_jobs(cfg, progress), "06 ablation points")


# --- notebook-level stages (for the run driver's cache check and ETA) ------------------------------------
_SUMMARY_KEYS = ("run.seed", "world", "models", "generation", "data", "self_critique", "validation", "training",
                 "evaluation", "sweeps", "ablations")


def scaling_stage(cfg: StudyConfig) -> artifacts.Stage:
    # the sweep's arms' rows, where they differ from what their names alone meant (arms.stage_key)
    inj = "world" if worlds.get(cfg).injects_errors else "model"
    rows = {m: {f: v for f, v in k.items() if f != "max_draws" or cfg.sweeps.draw_to_fill}
            for m in cfg.sweeps.critic_modes if (k := arms.stage_key(arms.arm(m), "sweep", inj))}
    rows = {m: k for m, k in rows.items() if k}
    return artifacts.stage(SCALING_STAGE, cfg, _SUMMARY_KEYS, SUMMARY_VERSION,
                           extra_key={"prompt_version": prompts.PROMPT_VERSION, **({"arms": rows} if rows else {})})


def ablation_stage(cfg: StudyConfig) -> artifacts.Stage:
    return artifacts.stage(ABLATION_STAGE, cfg, _SUMMARY_KEYS, SUMMARY_VERSION,
                           extra_key={"prompt_version": prompts.PROMPT_VERSION})


def stages_05(cfg: StudyConfig) -> list[artifacts.Stage]:
    return [scaling_stage(cfg)]


def stages_06(cfg: StudyConfig) -> list[artifacts.Stage]:
    return [ablation_stage(cfg)]


def save_points(st: artifacts.Stage, rows: Sequence[dict]) -> Path:
    p = st.path("points.json")
    write_json(p, list(rows))
    return p


def load_points(st: artifacts.Stage) -> list[dict]:
    return json.loads((st.dir / "points.json").read_text())
