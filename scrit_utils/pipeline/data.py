"""Stage 01: problems with reference answers, solutions from several generators, labels, filter.

Steps (:func:`run` chains them; :func:`report` builds what notebook 01 shows):

1. :func:`load_problems` -- the world's problems (:mod:`scrit_utils.worlds`: the toy world draws
   them, the real world reads ``world.real_sources``).
2. :func:`generate_solutions` -- every generator model samples ``generation.solve.n``
   solutions per problem (solve prompt, per-item seeds), graded against the reference
   answer as they are written; resumable (``all_solutions.jsonl.partial``); a world may add
   solutions of its own (toy: ``world.arith.world_solutions``).
3. :func:`filter_and_cap` -- keep problems with >= 1 correct and >= 1 incorrect solution,
   cap each generator's correct / incorrect solutions, cap the number of problems.
4. :func:`statistics` -- tables per generator and per difficulty (number of distinct
   final answers per problem) and a figure.

Files in ``artifacts/01_data/<hash>/``: ``all_problems.jsonl``, ``all_solutions.jsonl``,
``problems.jsonl`` (kept), ``solutions.jsonl`` (kept), ``manifest.json``.

Usage::

    from scrit_utils.core import config
    from scrit_utils.pipeline import data
    cfg = config.load("configs/smoke.yaml")
    rep = data.run(cfg)           # computes or reuses the stage; tables/figure in rep (saved under results/)
    problems, solutions = data.load_outputs(rep.stage)
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Sequence

from scrit_utils.core import artifacts
from scrit_utils.critique import prompts
from scrit_utils import worlds
from scrit_utils.core.config import StudyConfig
from scrit_utils.generation import GenerationRequest, derive_seed
from scrit_utils.core.records import Problem, Solution, read_jsonl, stable_id, write_jsonl
from scrit_utils.pipeline import common
from scrit_utils.critique.grading import is_equivalent
from scrit_utils.critique.parsing import extract_last_boxed
from scrit_utils.worlds.arith import split_steps

STAGE = "01_data"
VERSION = "3"  # 2: keys checked against what the stage reads (backend settings); 3: toy knobs under world.arith
KEYS = (
    "run.seed",
    "world",
    "models.generators",
    *common.BACKEND_KEYS,
    "generation.prompt_variant",
    "generation.solve",
    "data",
)


def stage(cfg: StudyConfig) -> artifacts.Stage:
    return artifacts.stage(STAGE, cfg, KEYS, VERSION, extra_key={"prompt_version": prompts.PROMPT_VERSION})


def stages(cfg: StudyConfig) -> list[artifacts.Stage]:
    return [stage(cfg)]


# --- 1. problems ------------------------------------------------------------------------
def load_problems(cfg: StudyConfig) -> list[Problem]:
    """The world's problems (:meth:`scrit_utils.worlds.base.World.problems`)."""
    return worlds.get(cfg).problems()



# --- 2. solutions -----------------------------------------------------------------------
def solution_id(problem_id: str, generator: str, sample: int) -> str:
    return stable_id(problem_id, generator, "solve", sample)


def parse_solution(text: str) -> tuple[tuple[str, ...], str | None]:
    """Steps (``Step k:`` lines) and final answer (last ``\\boxed{}``) of a generated solution."""
    return tuple(split_steps(text)), extract_last_boxed(text)


def _grade(pred: str | None, ref: str) -> bool:
    return pred is not None and bool(is_equivalent(pred, ref))


def generate_solutions(cfg: StudyConfig, st: artifacts.Stage, problems: Sequence[Problem]) -> list[Solution]:
    """Sample solutions from every generator (resumable), each graded on the fly."""
    world = worlds.get(cfg)
    if not cfg.models.generators and not world.supplies_solutions:
        raise ValueError(f"{cfg.source}: models.generators is empty")
    out = st.jsonl("all_solutions.jsonl", Solution)
    params = common.sampling(cfg.generation.solve)
    variant = cfg.generation.prompt_variant
    by_id = {p.id: p for p in problems}
    for gen in cfg.models.generators:
        items = [(p.id, k) for p in problems for k in range(cfg.generation.solve.n)]
        todo = [it for it in items if solution_id(it[0], gen.name, it[1]) not in out.done_ids]
        if not todo:
            continue
        backend = common.make_backend(cfg, gen.path, cache=False)  # one generator in memory at a time

        def request(it, gen=gen):
            pid, k = it
            return GenerationRequest(
                id=solution_id(pid, gen.name, k),
                messages=prompts.solve_messages(by_id[pid].question, variant),
                seed=derive_seed(cfg.run.seed, STAGE, gen.name, pid, k),
            )

        def record(it, text, gen=gen):
            pid, k = it
            steps, ans = parse_solution(text)
            return Solution(
                id=solution_id(pid, gen.name, k), problem_id=pid, generator=gen.name, steps=steps,
                final_answer=ans, is_correct=_grade(ans, by_id[pid].answer), text=text,
                meta={"sample": k},
            )

        common.generate_resumable(
            backend, out, items, item_id=lambda it, gen=gen: solution_id(it[0], gen.name, it[1]),
            request=request, record=record, params=params, chunk_size=cfg.generation.batch_size,
            desc=f"solve [{gen.name}]",
        )
        del backend
        common.release_backends()
    out.append(world.world_solutions(problems, solution_id, f"{cfg.run.seed}/{STAGE}/world"))
    out.finalize()
    return out.records()


# --- 3. filter ------------------------------------------------------------------------------
def distinct_answers(solutions: Sequence[Solution]) -> dict[str, int]:
    """Problem id -> number of distinct final answers among its solutions (None counts as one)."""
    answers: dict[str, set] = defaultdict(set)
    for s in solutions:
        answers[s.problem_id].add((s.final_answer or "").strip())
    return {pid: len(a) for pid, a in answers.items()}


def filter_and_cap(
    cfg: StudyConfig, problems: Sequence[Problem], solutions: Sequence[Solution]
) -> tuple[list[Problem], list[Solution]]:
    d = cfg.data
    rng = random.Random(f"{cfg.run.seed}/{STAGE}/filter")
    by_pid: dict[str, list[Solution]] = defaultdict(list)
    for s in solutions:
        by_pid[s.problem_id].append(s)
    kept = []
    for p in problems:
        labels = {s.is_correct for s in by_pid.get(p.id, [])}
        if not by_pid.get(p.id):
            continue
        if d.require_mixed and labels != {True, False}:
            continue
        kept.append(p)
    if d.max_problems is not None and len(kept) > d.max_problems:
        order = {p.id: i for i, p in enumerate(problems)}
        kept = sorted(rng.sample(kept, d.max_problems), key=lambda p: order[p.id])
    keep_ids = {p.id for p in kept}
    pool = [s for s in solutions if s.problem_id in keep_ids]
    caps = {True: d.cap_correct_per_generator, False: d.cap_incorrect_per_generator}
    groups: dict[tuple[str, bool], list[Solution]] = defaultdict(list)
    for s in pool:
        groups[(s.generator, bool(s.is_correct))].append(s)
    chosen: set[str] = set()
    for (gen, ok), group in sorted(groups.items()):
        cap = caps[ok]
        pick = group if cap is None or len(group) <= cap else rng.sample(group, cap)
        chosen.update(s.id for s in pick)
    kept_solutions = [s for s in pool if s.id in chosen]
    used = {s.problem_id for s in kept_solutions}
    return [p for p in kept if p.id in used], kept_solutions


# --- 4. statistics --------------------------------------------------------------------------
def statistics(problems_all, solutions_all, problems_kept, solutions_kept):
    """(per_generator, per_difficulty) DataFrames."""
    import pandas as pd

    kept_ids = {s.id for s in solutions_kept}
    rows = []
    for gen in sorted({s.generator for s in solutions_all}):
        ss = [s for s in solutions_all if s.generator == gen]
        kk = [s for s in ss if s.id in kept_ids]
        rows.append({
            "generator": gen,
            "solutions": len(ss),
            "accuracy": sum(bool(s.is_correct) for s in ss) / max(len(ss), 1),
            "no_answer": sum(s.final_answer is None for s in ss),
            "kept_correct": sum(bool(s.is_correct) for s in kk),
            "kept_incorrect": sum(not s.is_correct for s in kk),
        })
    per_gen = pd.DataFrame(rows)
    nd = distinct_answers(solutions_all)
    kept_pids = {p.id for p in problems_kept}
    acc: dict[str, list[bool]] = defaultdict(list)
    for s in solutions_all:
        acc[s.problem_id].append(bool(s.is_correct))
    drows = []
    for k in sorted(set(nd.values())):
        pids = [pid for pid, v in nd.items() if v == k]
        drows.append({
            "distinct_answers": k,
            "problems": len(pids),
            "kept": sum(pid in kept_pids for pid in pids),
            "solution_accuracy": sum(sum(acc[p]) for p in pids) / max(sum(len(acc[p]) for p in pids), 1),
        })
    per_diff = pd.DataFrame(drows, columns=["distinct_answers", "problems", "kept", "solution_accuracy"])
    return per_gen, per_diff


def per_steps_table(problems_all, solutions_all):
    """Toy world extra difficulty axis: accuracy by number of steps."""
    import pandas as pd

    n_steps = {p.id: p.meta.get("n_steps") for p in problems_all}
    rows: dict[tuple, list[bool]] = defaultdict(list)
    for s in solutions_all:
        rows[(s.generator, n_steps.get(s.problem_id))].append(bool(s.is_correct))
    return pd.DataFrame(
        [{"generator": g, "n_steps": k, "solutions": len(v), "accuracy": sum(v) / len(v)} for (g, k), v in sorted(rows.items(), key=str)]
    )


def figure(per_gen, per_diff):
    import matplotlib.pyplot as plt

    common.plot_style()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    if len(per_gen):
        ax.bar(per_gen["generator"], per_gen["accuracy"], color="tab:blue")
        ax.set_ylim(0, 1)
    ax.set_title("Solve accuracy per generator")
    ax.set_ylabel("share correct")
    ax.tick_params(axis="x", rotation=20)
    ax = axes[1]
    if len(per_diff):
        ax.bar(per_diff["distinct_answers"].astype(str), per_diff["problems"], color="lightgray", label="all")
        ax.bar(per_diff["distinct_answers"].astype(str), per_diff["kept"], color="tab:green", label="kept (mixed labels)")
        ax.legend()
    ax.set_title("Problems by number of distinct answers")
    ax.set_xlabel("distinct final answers among the solutions")
    ax.set_ylabel("problems")
    fig.tight_layout()
    return fig


# --- whole stage ----------------------------------------------------------------------------
def write_problems(st: artifacts.Stage, problems: Sequence[Problem]) -> None:
    if not st.path("all_problems.jsonl").exists():
        write_jsonl(st.path("all_problems.jsonl"), problems)


def finish(cfg, st, problems_all, solutions_all, problems_kept, solutions_kept) -> dict:
    if st.done:  # cached: keep the original manifest
        return st.manifest
    write_jsonl(st.path("problems.jsonl"), problems_kept)
    write_jsonl(st.path("solutions.jsonl"), solutions_kept)
    c = Counter(bool(s.is_correct) for s in solutions_kept)
    return st.finish(counts={
        "problems_all": len(problems_all),
        "solutions_all": len(solutions_all),
        "problems": len(problems_kept),
        "solutions": len(solutions_kept),
        "solutions_correct": c[True],
        "solutions_incorrect": c[False],
    })


def run(cfg: StudyConfig, tables: bool = True) -> common.StageReport:
    """The whole stage (cached when finished); with ``tables`` also its report (:func:`report`),
    which is what notebook 01 shows. The sweeps pass ``tables=False`` and use ``.stage``."""
    st = stage(cfg)
    if not st.done:
        cfg = st.record(cfg)  # the stage computes with a view that checks its key (scrit_utils.core.inputs)
        common.setup_torch(cfg)
        problems = load_problems(cfg)
        write_problems(st, problems)
        solutions = generate_solutions(cfg, st, problems)
        kept_p, kept_s = filter_and_cap(cfg, problems, solutions)
        finish(cfg, st, problems, solutions, kept_p, kept_s)
    return report(cfg, st) if tables else common.StageReport(st, st.manifest["counts"])


def report(cfg: StudyConfig, st: artifacts.Stage) -> common.StageReport:
    """Tables, figure and examples of a finished stage, from its files (saved under ``results/``)."""
    import pandas as pd

    problems = read_jsonl(st.dir / "all_problems.jsonl", Problem)
    solutions = read_jsonl(st.dir / "all_solutions.jsonl", Solution)
    kept_p, kept_s = load_outputs(st)
    rep = common.StageReport(st, st.manifest["counts"])
    per_gen, per_diff = statistics(problems, solutions, kept_p, kept_s)
    rep.table(cfg, "01_per_generator", per_gen)
    rep.table(cfg, "01_per_difficulty", per_diff)
    rep.figure(cfg, "01_solutions", figure(per_gen, per_diff))
    if problems and "n_steps" in problems[0].meta:  # toy world: a second difficulty axis, the number of steps
        rep.table(cfg, "01_per_steps", per_steps_table(problems, solutions))
    rep.examples["problems"] = pd.DataFrame([{"question": p.question, "answer": p.answer, "steps": p.meta.get("n_steps")}
                                             for p in problems[:5]])
    rep.examples["reference_solution"] = problems[0].reference_solution if problems else ""
    rep.examples["solutions"] = pd.DataFrame([{"generator": s.generator, "final_answer": s.final_answer,
                                               "correct": s.is_correct, "text": s.text[:80]} for s in solutions[:6]])
    rep.examples["kept"] = (f"kept {len(kept_p)} of {len(problems)} problems, "
                            f"{len(kept_s)} of {len(solutions)} solutions")
    return rep


def load_outputs(st: artifacts.Stage) -> tuple[list[Problem], list[Solution]]:
    """Kept problems and solutions of a finished stage."""
    if not st.done:
        raise RuntimeError(f"{STAGE} ({st.dir}) has not finished")
    return read_jsonl(st.dir / "problems.jsonl", Problem), read_jsonl(st.dir / "solutions.jsonl", Solution)
