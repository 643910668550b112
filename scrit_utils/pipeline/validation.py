"""Stage 03: self-validation of the stage-02 critiques and the self-training (SFT) set.

Three checks, each switchable in the profile (``validation.*``) or fixed by the arm's row
(:data:`scrit_utils.core.arms.ARMS` ``checks``; e.g. ``unvalidated`` = none, ``only_answer`` = (ii));
a critique passes when every *enabled* check passes (no check enabled = the "without self-validation" arm):

(i)   ``direct_critic_approves`` -- the same model, with the *direct* (no-reference) prompt,
      critiques the correction and must answer "Correct" with first error step -1. For a
      critique that judged the solution correct, the "correction" is the student solution it
      kept, so that solution is what the direct critic reads.
(ii)  ``answer_matches_reference`` -- the correction's final answer (last ``\\boxed{}`` of the
      critique) equals the problem's reference answer (:func:`scrit_utils.critique.grading.is_equivalent`).
(iii) ``verdict_matches_label`` -- the conclusion (Correct / Incorrect) agrees with the student
      solution's known label.

Checks (ii) and (iii) are always computed (they are free) and reported even when disabled; (i)
costs one generation per critique and runs only when enabled: on every critique
(``validation.direct_check_scope: all``) or only on those that passed the other enabled checks
(``gated``: the same critiques are kept, since a critique must pass every enabled check, for the
generations of the ~1/4 that get that far; check (i)'s outcome is then ``None`` elsewhere, so its own
pass rate is over the critiques it ran on and the ``only_direct_critic`` ablation cannot be built).

Self-training set (:func:`build_sft`): input = problem + student solution under the *direct*
prompt; target = the critique without its reference analysis
(:func:`scrit_utils.critique.prompts.strip_reference_analysis`); a target that still mentions a reference
is dropped; classes balanced to ``validation.correct_ratio`` (0.5 = the paper's 1:1), or critiques of correct
solutions only where the row says ``sft: correct_only`` (the approve-everything floor). The manifest's counts
carry the arm's yield: kept SFT candidates per critique, per class.

Files in ``artifacts/03_self_validation/<hash>/``: ``direct_checks.jsonl`` (check i critiques),
``validation.jsonl`` (:class:`~scrit_utils.core.records.ValidationResult`), ``sft.jsonl``
(:class:`~scrit_utils.core.records.SFTExample`), ``manifest.json``.

Usage::

    from scrit_utils.pipeline import validation
    rep = validation.run(cfg)                 # rep: what notebook 03 shows
    sft = validation.load_sft(rep.stage)
"""
from __future__ import annotations

import random
from collections import defaultdict
from typing import Sequence

from scrit_utils.core import arms, artifacts, inputs as _inputs
from scrit_utils.critique import prompts
from scrit_utils.core.config import StudyConfig
from scrit_utils.generation import GenerationRequest, derive_seed
from scrit_utils.core.records import CritiqueRecord, Problem, SFTExample, Solution, ValidationResult, read_jsonl, stable_id, write_jsonl
from scrit_utils.pipeline import common, data, self_critic
from scrit_utils.critique.grading import is_equivalent
from scrit_utils.critique.parsing import parse_critique

STAGE = "03_self_validation"
VERSION = "4"  # 2: keys checked against what the stage reads (backend settings); 3: toy knobs under world.arith;
# 4: validation.direct_check_scope (unchecked critiques record None for check i). The arm's row (checks, sft)
# enters the key through extra_key (arms.stage_key: only where it differs from the defaults)
KEYS = (
    "run.seed",
    "models.critic",
    *common.BACKEND_KEYS,
    "generation.prompt_variant",
    "generation.validation",
    "validation",
)
CHECKS = arms.CHECKS
#: what each check asks, for figure legends
CHECK_LABELS = {"direct_critic_approves": "a direct critique approves the correction",
                "answer_matches_reference": "the correction's answer matches the reference",
                "verdict_matches_label": "the verdict matches the solution's label",
                "passed": "all enabled checks (kept)",
                "direct_check_ran": "check (i) ran (gated: the other checks passed)"}


def arm_row(cfg: StudyConfig) -> arms.CriticArm:
    """The profile's arm. Its name is not an input of this stage (arms sharing critiques and checks share the
    stage): what the stage reads of the row (checks, sft) is in the key through :func:`stage`'s extra_key."""
    return arms.arm(_inputs.raw(cfg).self_critique.mode)


def stage(cfg: StudyConfig) -> artifacts.Stage:
    key = arms.stage_key(arm_row(cfg), "validation")
    return artifacts.stage(
        STAGE, cfg, KEYS, VERSION, upstream=[self_critic.stage(cfg)],
        extra_key={"prompt_version": prompts.PROMPT_VERSION, **({"arm": key} if key else {})},
    )


def stages(cfg: StudyConfig) -> list[artifacts.Stage]:
    return [stage(cfg)]


def enabled_checks(cfg: StudyConfig) -> list[str]:
    """The arm's checks, or (row ``checks: None``) the ones the profile's validation section switches on."""
    row = arm_row(cfg)
    if row.checks is not None:
        return [c for c in CHECKS if c in row.checks]
    return [c for c in CHECKS if getattr(cfg.validation, c)]


# --- the correction a critique proposes ---------------------------------------------------
def correction_text(crit: CritiqueRecord, student: Solution) -> str | None:
    """The solution the critique ends up with: the kept student solution, or its correction."""
    if crit.verdict is True:
        return self_critic.solution_text(student)
    if crit.verdict is False:
        corr = parse_critique(crit.text).correction
        if not corr or not corr.strip():
            return None
        steps, _ = data.parse_solution(corr)
        return prompts.format_solution(steps) if steps else corr.strip()
    return None


# --- checks -------------------------------------------------------------------------------
def free_checks(c: CritiqueRecord, problems: dict) -> dict[str, bool]:
    """Checks (ii) and (iii): no generation needed."""
    ref = problems[c.meta["problem_id"]].answer
    return {
        "answer_matches_reference": c.final_answer is not None and bool(is_equivalent(c.final_answer, ref)),
        "verdict_matches_label": c.verdict is not None and c.verdict == bool(c.meta["label_correct"]),
    }


def needs_direct_check(cfg: StudyConfig, free: dict[str, bool]) -> bool:
    """Whether check (i) runs on a critique with these free-check outcomes (``direct_check_scope``)."""
    if cfg.validation.direct_check_scope == "all":
        return True
    return all(free[k] for k in enabled_checks(cfg) if k in free)


def direct_checks(
    cfg: StudyConfig, st: artifacts.Stage, crits: Sequence[CritiqueRecord], problems: dict, solutions: dict
) -> dict[str, CritiqueRecord]:
    """Check (i): direct-prompt critiques of the critiques' corrections (resumable); every critique, or
    with ``direct_check_scope: gated`` only those that passed the other enabled checks."""
    variant = cfg.generation.prompt_variant
    items = []
    for c in crits:
        if not needs_direct_check(cfg, free_checks(c, problems)):
            continue
        text = correction_text(c, solutions[c.meta["solution_id"]])
        if text is not None:
            items.append((c, text))
    out = st.jsonl("direct_checks.jsonl", CritiqueRecord)

    def cid(it) -> str:
        return stable_id(it[0].id, "direct-check")

    def msgs(it) -> list:
        return prompts.direct_critic_messages(problems[it[0].meta["problem_id"]].question, it[1], variant)

    def request(it) -> GenerationRequest:
        return GenerationRequest(id=cid(it), messages=msgs(it), seed=derive_seed(cfg.run.seed, STAGE, it[0].id, 0))

    def record(it, text: str) -> CritiqueRecord:
        meta = {"critique_id": it[0].id, "problem_id": it[0].meta["problem_id"]}
        return self_critic.make_record(cid(it), it[0].id, "validation", cfg.models.critic, msgs(it), text, meta)

    backend = common.make_backend(cfg, cfg.models.critic)
    common.generate_resumable(
        backend, out, items, item_id=cid, request=request, record=record,
        params=common.sampling(cfg.generation.validation), chunk_size=cfg.generation.batch_size,
        desc="check (i): direct critic on corrections",
    )
    out.finalize()
    return {r.meta["critique_id"]: r for r in out.records()}


def validate(
    cfg: StudyConfig, crits: Sequence[CritiqueRecord], problems: dict, direct: dict[str, CritiqueRecord] | None
) -> list[ValidationResult]:
    on = enabled_checks(cfg)
    results = []
    for c in crits:
        all_checks: dict[str, bool | None] = free_checks(c, problems)
        if direct is not None:
            # None: gated off (another enabled check already failed, so the critique is not kept either way)
            d = direct.get(c.id)
            all_checks["direct_critic_approves"] = (
                (d is not None and d.verdict is True and d.first_error_step == -1)
                if needs_direct_check(cfg, all_checks) else None)
        checks = {k: all_checks[k] for k in on}
        results.append(ValidationResult(
            id=c.id, critique_id=c.id, checks=checks, passed=all(bool(v) for v in checks.values()),
            meta={
                "all_checks": all_checks, "label_correct": bool(c.meta["label_correct"]),
                "generator": c.meta.get("generator"), "problem_id": c.meta["problem_id"],
                "parsed": c.verdict is not None,
            },
        ))
    return results


# --- pass-rate tables ------------------------------------------------------------------------
def pass_rates(results: Sequence[ValidationResult], distinct: dict[str, int]):
    """(overall, per_difficulty, per_generator) DataFrames of pass rates per check."""
    import pandas as pd

    rows = []
    for r in results:
        row = {
            "generator": r.meta.get("generator"),
            "distinct_answers": distinct.get(r.meta["problem_id"]),
            "label": "correct" if r.meta["label_correct"] else "incorrect",
            "passed": r.passed,
        }
        row.update({k: v for k, v in r.meta["all_checks"].items()})
        rows.append(row)
    df = pd.DataFrame(rows, columns=["generator", "distinct_answers", "label", "passed", *CHECKS])
    cols = [c for c in [*CHECKS, "passed"] if df[c].notna().any()] if len(df) else ["passed"]
    if "direct_critic_approves" in cols and df["direct_critic_approves"].isna().any():
        # gated check (i): its rate is over the critiques it ran on; this column says what share that was
        df["direct_check_ran"] = df["direct_critic_approves"].notna()
        cols.insert(cols.index("direct_critic_approves"), "direct_check_ran")

    def agg(by: str | None):
        if not len(df):
            return pd.DataFrame(columns=([by] if by else []) + ["critiques", *cols])
        if by is None:
            g = df[cols].astype(float).mean().to_frame().T
            g.insert(0, "critiques", len(df))
            return g
        g = df.groupby(by)[cols].agg(lambda s: s.astype(float).mean()).reset_index()
        g.insert(1, "critiques", df.groupby(by).size().values)
        return g

    overall = pd.concat([agg(None).assign(label="all"), agg("label")], ignore_index=True)
    overall = overall[["label", "critiques", *cols]]
    return overall, agg("distinct_answers"), agg("generator")


def figure(per_diff, per_gen, enabled: Sequence[str]):
    """Paper Fig. 2 analogue: pass rate vs problem difficulty, and per generator."""
    import matplotlib.pyplot as plt

    common.plot_style()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, df, by, title in (
        (axes[0], per_diff, "distinct_answers", "Pass rate vs. distinct answers per problem"),
        (axes[1], per_gen, "generator", "Pass rate per generator"),
    ):
        if len(df):
            x = df[by].astype(str)
            for col in [c for c in [*CHECKS, "passed"] if c in df.columns]:
                style = "-o" if col == "passed" else "--."
                lab = CHECK_LABELS[col] + ("" if col == "passed" or col in enabled else " (off)")
                if col == "direct_critic_approves" and "direct_check_ran" in df.columns:
                    lab += " (of those it ran on)"
                ax.plot(x, df[col].astype(float), style, label=lab)
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(title)
        ax.set_xlabel(by.replace("_", " "))
        ax.set_ylabel("share of critiques kept")
        ax.tick_params(axis="x", rotation=20)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


# --- self-training set ---------------------------------------------------------------------
def mentions_reference(text: str) -> bool:
    return prompts.REFERENCE_ANALYSIS_HEADER.lower() in text.lower() or "reference" in text.lower()


def balance(pos: list, neg: list, ratio: float, cap: int | None, rng: random.Random) -> tuple[list, list]:
    """Largest subsets with ``len(pos) / (len(pos) + len(neg)) == ratio`` (rounded), capped."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"validation.correct_ratio must be in [0, 1], got {ratio}")
    if ratio == 0.0:
        total = len(neg)
    elif ratio == 1.0:
        total = len(pos)
    else:
        total = int(min(len(pos) / ratio, len(neg) / (1.0 - ratio)) + 1e-9)
    if cap is not None:
        total = min(total, cap)
    n_pos = min(len(pos), round(total * ratio))
    n_neg = min(len(neg), total - n_pos)
    return rng.sample(pos, n_pos), rng.sample(neg, n_neg)


def build_sft(
    cfg: StudyConfig, crits: Sequence[CritiqueRecord], results: Sequence[ValidationResult], problems: dict, solutions: dict
) -> tuple[list[SFTExample], dict]:
    """Balanced no-reference training examples from the critiques that passed."""
    variant = cfg.generation.prompt_variant
    passed = {r.critique_id for r in results if r.passed}
    pos, neg, dropped, malformed = [], [], 0, 0
    for c in crits:
        if c.id not in passed:
            continue
        target = prompts.strip_reference_analysis(c.text).strip()
        if prompts.CRITIQUE_HEADER not in target:
            malformed += 1  # no step critique to learn from
            continue
        if mentions_reference(target):
            dropped += 1
            continue
        sol = solutions[c.meta["solution_id"]]
        ex = SFTExample(
            id=stable_id(c.id, "sft"),
            prompt=prompts.direct_critic_messages(problems[c.meta["problem_id"]].question, self_critic.solution_text(sol), variant),
            completion=target,
            label_correct=bool(c.meta["label_correct"]),
            meta={"critique_id": c.id, "problem_id": c.meta["problem_id"], "generator": c.meta.get("generator")},
        )
        (pos if ex.label_correct else neg).append(ex)
    rng = random.Random(f"{cfg.run.seed}/{STAGE}/balance")
    ratio = arms.sft_ratio(arm_row(cfg), cfg.validation.correct_ratio)
    p, n = balance(pos, neg, ratio, cfg.validation.max_examples, rng)
    examples = p + n
    rng.shuffle(examples)
    for ex in examples:  # the trained critic never sees a reference
        shown = ex.prompt[-1]["content"]
        assert not mentions_reference(ex.completion), ex.id
        assert "Reference Solution:" not in shown and "\nReference:\n" not in shown, ex.id
    info = {"passed_correct": len(pos), "passed_incorrect": len(neg), "dropped_mentions_reference": dropped, "dropped_no_critique_header": malformed,
            "sft_correct": len(p), "sft_incorrect": len(n)}
    return examples, info


# --- whole stage -------------------------------------------------------------------------------
def inputs(st: artifacts.Stage):
    """Stage-02 critiques plus the problems/solutions they refer to (dicts by id)."""
    crit_st = st.up(self_critic.STAGE)
    data_st = crit_st.up(data.STAGE)
    crits = self_critic.load_outputs(crit_st)
    problems = {p.id: p for p in read_jsonl(data_st.dir / "all_problems.jsonl", Problem)}
    solutions = {s.id: s for s in read_jsonl(data_st.dir / "solutions.jsonl", Solution)}
    inj = crit_st.dir / "injected.jsonl"
    if inj.exists():
        solutions.update({s.id: s for s in read_jsonl(inj, Solution)})
    distinct = data.distinct_answers(read_jsonl(data_st.dir / "all_solutions.jsonl", Solution))
    return crits, problems, solutions, distinct


def run(cfg: StudyConfig, tables: bool = True) -> common.StageReport:
    """The whole stage (cached when finished); with ``tables`` also its report (:func:`report`),
    which is what notebook 03 shows. The sweeps pass ``tables=False`` and use ``.stage``."""
    st = stage(cfg)
    if not st.done:
        cfg = st.record(cfg)  # the stage computes with a view that checks its key (scrit_utils.core.inputs)
        common.setup_torch(cfg)
        crits, problems, solutions, distinct = inputs(st)
        direct = direct_checks(cfg, st, crits, problems, solutions) if CHECKS[0] in enabled_checks(cfg) else None
        results = validate(cfg, crits, problems, direct)
        sft, info = build_sft(cfg, crits, results, problems, solutions)
        info["direct_checks_run"] = len(direct or {})
        finish(st, results, sft, info)
    return report(cfg, st) if tables else common.StageReport(st, st.manifest["counts"])


def report(cfg: StudyConfig, st: artifacts.Stage) -> common.StageReport:
    """Pass-rate tables, figure and examples of a finished stage, from its files (saved under ``results/``)."""
    _, _, _, distinct = inputs(st)
    results = read_jsonl(st.dir / "validation.jsonl", ValidationResult)
    rep = common.StageReport(st, st.manifest["counts"])
    overall, per_diff, per_gen = pass_rates(results, distinct)
    rep.table(cfg, "03_pass_rates", overall)
    rep.table(cfg, "03_pass_rates_by_difficulty", per_diff)
    rep.table(cfg, "03_pass_rates_by_generator", per_gen)
    rep.figure(cfg, "03_self_validation", figure(per_diff, per_gen, enabled_checks(cfg)))
    direct = st.dir / "direct_checks.jsonl"
    checks = read_jsonl(direct, CritiqueRecord) if direct.exists() else []
    rep.examples["direct_check"] = f"{checks[0].prompt}\n---\n{checks[0].text}" if checks else None
    sft = load_sft(st)
    rep.examples["sft"] = (f"[input]\n{sft[0].prompt[-1]['content']}\n\n[target]\n{sft[0].completion}" if sft else None)
    return rep


def finish(st: artifacts.Stage, results, sft, info) -> dict:
    if st.done:  # cached: keep the original manifest
        return st.manifest
    write_jsonl(st.path("validation.jsonl"), results)
    write_jsonl(st.path("sft.jsonl"), sft)
    return st.finish(counts={
        "critiques": len(results),
        "passed": sum(r.passed for r in results),
        "sft_examples": len(sft),
        **info,
        **yield_counts(results, info),
    })


def yield_counts(results: Sequence[ValidationResult], info: dict) -> dict:
    """The arm's yield per class: SFT candidates (passed, with a usable target) per critique written."""
    out = {}
    for cls, label in (("correct", True), ("incorrect", False)):
        n = sum(r.meta["label_correct"] == label for r in results)
        out[f"critiqued_{cls}"] = n
        out[f"yield_{cls}"] = round(info[f"passed_{cls}"] / n, 4) if n else None
    return out


def load_sft(st: artifacts.Stage) -> list[SFTExample]:
    if not st.done:
        raise RuntimeError(f"{STAGE} ({st.dir}) has not finished")
    return read_jsonl(st.dir / "sft.jsonl", SFTExample)
