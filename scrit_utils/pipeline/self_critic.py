"""Stage 02: the model being improved writes critiques of the stage-01 solutions.

Pairing (:func:`make_pairs`, SCRIT section 3): every *incorrect* solution is paired with a random
correct solution of the same problem as its reference; every *correct* solution with a
*different* correct solution (if the problem has none, the problem's own reference solution).

Critique modes (``self_critique.mode``, rows of :data:`scrit_utils.core.arms.ARMS`: the row says which
prompt, what is critiqued and by whom; :func:`critique_jobs` reads it):

- ``critiques: pairs`` -- the model critiques every pair with the row's prompt: ``contrastive`` (SCRIT:
  problem + reference + student -> reference analysis, step-wise critique stopping at the first error,
  conclusion, correction) or ``direct`` (the same critic without a reference, the evaluation prompt);
- ``critiques: injected_bugs`` -- every *correct* solution is first rewritten with one injected error
  (``injector: model``: the model rewrites it, the paper's arm; ``world``: the world's rule-based injector,
  external supervision), then critiqued contrastively against the original; critiques of correct solutions
  are produced as for the pairs, so both classes exist for the balanced training set. Injected solutions
  are labelled incorrect by construction; a model's injection whose final answer still equals the
  reference answer is dropped (it is not an error);
- ``critiques: oracle`` -- the world writes its exact no-reference critique of every pair (no model);
- ``shares_critiques_with`` -- the row reuses another row's stage (same pairs, texts and ids; its stage 03
  differs): :func:`stage` and :func:`run` compute under that row's name (:func:`generating_cfg`).

Files in ``artifacts/02_self_critique/<hash>/``: ``pairs.jsonl``, ``injected.jsonl`` (bug
injection only), ``critiques.jsonl`` (:class:`~scrit_utils.core.records.CritiqueRecord`, parsed fields
filled), ``manifest.json``. Generation is resumable item by item.

Usage::

    from scrit_utils.pipeline import self_critic
    rep = self_critic.run(cfg)                # cached when finished; rep: what notebook 02 shows
    crits = self_critic.load_outputs(rep.stage)
"""
from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter, defaultdict
from typing import Sequence

from scrit_utils.core import arms, artifacts
from scrit_utils.critique import prompts
from scrit_utils import worlds
from scrit_utils.core.config import StudyConfig
from scrit_utils.generation import GenerationRequest, derive_seed
from scrit_utils.core.records import CritiqueRecord, Pair, Problem, Solution, read_jsonl, stable_id, write_jsonl
from scrit_utils.pipeline import common, data
from scrit_utils.critique.grading import is_equivalent
from scrit_utils.critique.parsing import parse_critique

STAGE = "02_self_critique"
VERSION = "3"  # 2: keys checked against what the stage reads (backend settings); 3: toy knobs under world.arith
# (the arm's row enters the key through extra_key, arms.stage_key: only where it differs from what the name meant)
KEYS = (
    "run.seed",
    "models.critic",
    *common.BACKEND_KEYS,  # includes "world" (the decode rule; the toy world's error injector)
    "generation.prompt_variant",
    "generation.critique",
    "self_critique.mode",
    "self_critique.max_pairs",
)


def generating_cfg(cfg: StudyConfig) -> StudyConfig:
    """``cfg`` under the name of the row whose critiques its arm uses (:func:`arms.critique_source`)."""
    src = arms.critique_source(arms.arm(cfg.self_critique.mode))
    if src.name == cfg.self_critique.mode:
        return cfg
    return dataclasses.replace(cfg, self_critique=dataclasses.replace(cfg.self_critique, mode=src.name))


def injector_of(cfg: StudyConfig) -> str:
    """Who writes the injected bug for this profile's arm: the row's injector, or the profile's
    ``world.arith.injector`` for a row that leaves it to the profile (``bug_injection``)."""
    return arms.arm(cfg.self_critique.mode).injector or ("world" if worlds.get(cfg).injects_errors else "model")


def arm_key(cfg: StudyConfig) -> dict:
    """The stage-02 part of the arm's row for the cache key (empty for the rows the name alone keyed before)."""
    profile_injector = "world" if worlds.get(cfg).injects_errors else "model"
    return arms.stage_key(arms.arm(cfg.self_critique.mode), "critiques", profile_injector)


def stage(cfg: StudyConfig) -> artifacts.Stage:
    cfg = generating_cfg(cfg)
    key = arm_key(cfg)
    return artifacts.stage(
        STAGE, cfg, KEYS, VERSION, upstream=[data.stage(cfg)],
        extra_key={"prompt_version": prompts.PROMPT_VERSION, **({"arm": key} if key else {})},
    )


def stages(cfg: StudyConfig) -> list[artifacts.Stage]:
    return [stage(cfg)]


# --- pairing --------------------------------------------------------------------------------
def make_pairs(
    problems: Sequence[Problem], solutions: Sequence[Solution], seed: int, max_pairs: int | None = None
) -> list[Pair]:
    """One pair per solution; see the module docstring for the rule."""
    rng = random.Random(f"{seed}/{STAGE}/pairs")
    has_ref = {p.id: bool(p.reference_solution) for p in problems}
    correct: dict[str, list[Solution]] = defaultdict(list)
    for s in solutions:
        if s.is_correct:
            correct[s.problem_id].append(s)
    pairs = []
    for s in solutions:
        pool = correct.get(s.problem_id, [])
        if s.is_correct:
            pool = [c for c in pool if c.id != s.id]
        if pool:
            ref_id = rng.choice(pool).id
        elif has_ref.get(s.problem_id):
            ref_id = None  # the problem's own reference solution
        else:
            continue  # no reference available at all
        pairs.append(Pair(
            id=stable_id(s.id, "pair"), problem_id=s.problem_id, solution_id=s.id,
            reference_solution_id=ref_id, label_correct=bool(s.is_correct),
        ))
    if max_pairs is not None and len(pairs) > max_pairs:
        keep = set(p.id for p in rng.sample(pairs, max_pairs))
        pairs = [p for p in pairs if p.id in keep]
    return pairs


def solution_text(s: Solution) -> str:
    """What a critic is shown: the numbered steps (raw text when no step could be read)."""
    return prompts.format_solution(s.steps) if s.steps else s.text.strip()


def reference_text(pair: Pair, problems: dict[str, Problem], solutions: dict[str, Solution]) -> str:
    if pair.reference_solution_id is None:
        ref = problems[pair.problem_id].reference_solution
        if not ref:
            raise ValueError(f"pair {pair.id}: problem {pair.problem_id} has no reference solution")
        return ref
    return solution_text(solutions[pair.reference_solution_id])


# --- critique prompts -------------------------------------------------------------------------
def critique_messages(mode: str, problem: Problem, student: str, reference: str | None, variant: str) -> list:
    if mode == "direct":
        return prompts.direct_critic_messages(problem.question, student, variant)
    if reference is None:
        raise ValueError(f"{mode} critique of problem {problem.id} needs a reference solution")
    return prompts.contrastive_critic_messages(problem.question, reference, student, variant)


def critique_id(target_id: str, mode: str, sample: int) -> str:
    return stable_id(target_id, mode, "critique", sample)


def make_record(
    cid: str, target_id: str, mode: str, model: str, messages: list, text: str, meta: dict
) -> CritiqueRecord:
    c = parse_critique(text)
    return CritiqueRecord(
        id=cid, target_id=target_id, mode=mode, model=model, prompt=messages[-1]["content"], text=text,
        verdict=c.verdict, first_error_step=c.first_error_step, final_answer=c.final_answer, meta=meta,
    )


# --- bug injection ------------------------------------------------------------------------------
_INJ_RE = re.compile(
    re.escape(prompts.INJECTED_SOLUTION_START) + r"(.*?)(?:" + re.escape(prompts.INJECTED_SOLUTION_END) + r"|$)", re.S
)


def extract_injected(text: str) -> str | None:
    """The rewritten solution between the injection markers (None when absent/empty)."""
    m = _INJ_RE.search(text)
    body = (m.group(1) if m else "").strip()
    return body or None


def inject_bugs_world(cfg: StudyConfig, st: artifacts.Stage, pairs, problems, solutions) -> list[Solution]:
    """The world's rule-based injector corrupts each correct solution (toy world: one wrong step)."""
    world = worlds.get(cfg)
    out = st.jsonl("injected.jsonl", Solution)
    recs = []
    for p in pairs:
        if not p.label_correct:
            continue
        inj = world.inject_error(problems[p.problem_id], random.Random(f"{cfg.run.seed}/{STAGE}/inject/{p.id}"))
        recs.append(Solution(
            id=stable_id(p.solution_id, "injected"), problem_id=p.problem_id, generator="injected:world",
            steps=inj.steps, final_answer=inj.final_answer, is_correct=False, text=inj.text,
            meta={"source_solution_id": p.solution_id, "parsed": True, **inj.meta},
        ))
    out.append(recs)
    out.finalize()
    return out.records()


def inject_bugs(cfg: StudyConfig, st: artifacts.Stage, backend, pairs, problems, solutions) -> list[Solution]:
    """Each correct solution rewritten with one error by the row's injector (the model, or the world's rule);
    returns the usable injected solutions."""
    if injector_of(cfg) == "world":
        return inject_bugs_world(cfg, st, pairs, problems, solutions)
    out = st.jsonl("injected.jsonl", Solution)
    variant = cfg.generation.prompt_variant
    items = [p for p in pairs if p.label_correct]

    def sid(p: Pair) -> str:
        return stable_id(p.solution_id, "injected")

    def request(p: Pair) -> GenerationRequest:
        s = solutions[p.solution_id]
        return GenerationRequest(
            id=sid(p), messages=prompts.bug_injection_messages(problems[p.problem_id].question, solution_text(s), variant),
            seed=derive_seed(cfg.run.seed, STAGE, "inject", p.id, 0),
        )

    def record(p: Pair, text: str) -> Solution:
        body = extract_injected(text)
        steps, ans = data.parse_solution(body) if body else ((), None)
        return Solution(
            id=sid(p), problem_id=p.problem_id, generator=f"injected:{cfg.models.critic}", steps=steps,
            final_answer=ans, is_correct=False, text=text,
            meta={"source_solution_id": p.solution_id, "parsed": body is not None},
        )

    common.generate_resumable(
        backend, out, items, item_id=sid, request=request, record=record,
        params=common.sampling(cfg.generation.critique), chunk_size=cfg.generation.batch_size, desc="inject errors",
    )
    out.finalize()
    usable = []
    for s in out.records():
        ans_ok = s.final_answer is not None and is_equivalent(s.final_answer, problems[s.problem_id].answer)
        if s.steps and s.final_answer is not None and not ans_ok:
            usable.append(s)
    return usable


# --- what an arm critiques ------------------------------------------------------------------------
def critique_jobs(row: arms.CriticArm, pairs: Sequence[Pair], P: dict[str, Problem], S: dict[str, Solution],
                  injected: Sequence[Solution] = ()) -> list[tuple[str, Solution, str | None, bool, dict]]:
    """``(target pair id, shown solution, reference text, label, extra meta)`` for each critique of the arm:
    its prompt decides whether a reference is shown, ``critiques`` whether injected solutions (written
    beforehand, ``injected``) replace the incorrect pairs (the oracle critiques the pairs themselves)."""
    jobs: list[tuple[str, Solution, str | None, bool, dict]] = []
    if row.critiques == "injected_bugs":
        for s in injected:
            src = S[s.meta["source_solution_id"]]
            jobs.append((stable_id(s.id, "pair"), s, solution_text(src), False, {"injected_from": src.id}))
        pairs_used = [p for p in pairs if p.label_correct]
    else:
        pairs_used = list(pairs)
    for p in pairs_used:
        ref = reference_text(p, P, S) if row.prompt == "contrastive" else None
        jobs.append((p.id, S[p.solution_id], ref, p.label_correct, {"reference_solution_id": p.reference_solution_id}))
    return jobs


# --- generation -------------------------------------------------------------------------------
def generate_critiques(
    cfg: StudyConfig, st: artifacts.Stage, pairs: Sequence[Pair], problems: Sequence[Problem],
    solutions: Sequence[Solution],
) -> list[CritiqueRecord]:
    """Critiques for every pair in ``self_critique.mode`` (resumable)."""
    mode = cfg.self_critique.mode
    row = arms.arm(mode)
    variant = cfg.generation.prompt_variant
    P = {p.id: p for p in problems}
    S = {s.id: s for s in solutions}
    if row.critiques == "oracle":
        return oracle_critiques(cfg, st, critique_jobs(row, pairs, P, S), P)
    backend = common.make_backend(cfg, cfg.models.critic)
    n = cfg.generation.critique.n

    injected = inject_bugs(cfg, st, backend, pairs, P, S) if row.critiques == "injected_bugs" else []
    jobs = critique_jobs(row, pairs, P, S, injected)

    items = [(j, k) for j in jobs for k in range(n)]
    out = st.jsonl("critiques.jsonl", CritiqueRecord)
    crit_mode = row.prompt

    def item_id(it) -> str:
        return critique_id(it[0][0], mode, it[1])

    def messages(it) -> list:
        (tid, sol, ref, _, _), _k = it
        return critique_messages(crit_mode, P[sol.problem_id], solution_text(sol), ref, variant)

    def request(it) -> GenerationRequest:
        return GenerationRequest(id=item_id(it), messages=messages(it), seed=derive_seed(cfg.run.seed, STAGE, it[0][0], it[1]))

    def record(it, text: str) -> CritiqueRecord:
        (tid, sol, ref, label, extra), k = it
        meta = {
            "problem_id": sol.problem_id, "solution_id": sol.id, "generator": sol.generator,
            "label_correct": label, "sample": k, "prompt_mode": crit_mode, **extra,
        }
        return make_record(item_id(it), tid, mode, cfg.models.critic, messages(it), text, meta)

    common.generate_resumable(
        backend, out, items, item_id=item_id, request=request, record=record,
        params=common.sampling(cfg.generation.critique), chunk_size=cfg.generation.batch_size,
        desc=f"critiques [{mode}]",
    )
    out.finalize()
    return out.records()


def oracle_critiques(cfg: StudyConfig, st: artifacts.Stage, jobs, P: dict[str, Problem]) -> list[CritiqueRecord]:
    """The world's exact no-reference critique of each job's solution (one per pair: it is deterministic);
    the record keeps the prompt the row's critic would have read, so it says which critique it replaces."""
    world = worlds.get(cfg)
    mode, variant = cfg.self_critique.mode, cfg.generation.prompt_variant
    out = st.jsonl("critiques.jsonl", CritiqueRecord)
    if out.finalized:  # written before an interruption
        return out.records()
    recs = []
    for tid, sol, ref, label, extra in jobs:
        messages = critique_messages(arms.arm(mode).prompt, P[sol.problem_id], solution_text(sol), ref, variant)
        meta = {"problem_id": sol.problem_id, "solution_id": sol.id, "generator": sol.generator,
                "label_correct": label, "sample": 0, "prompt_mode": "oracle", **extra}
        text = world.exact_critique(P[sol.problem_id], sol.steps)
        recs.append(make_record(critique_id(tid, mode, 0), tid, mode, "world:exact", messages, text, meta))
    out.append(recs)
    out.finalize()
    return out.records()


# --- summaries ----------------------------------------------------------------------------------
def summary_table(critiques: Sequence[CritiqueRecord]):
    """Verdict vs known label (a first look at critique quality before validation)."""
    import pandas as pd

    rows = Counter(
        (
            "correct" if c.meta.get("label_correct") else "incorrect",
            {True: "Correct", False: "Incorrect", None: "unparsed"}[c.verdict],
        )
        for c in critiques
    )
    return pd.DataFrame(
        [{"label": lab, "verdict": v, "critiques": n} for (lab, v), n in sorted(rows.items())],
        columns=["label", "verdict", "critiques"],
    )


def worked_examples(critiques: Sequence[CritiqueRecord], k: int, seed: int = 0) -> list[CritiqueRecord]:
    """Up to ``k`` examples, alternating incorrect / correct student solutions."""
    rng = random.Random(seed)
    bad = [c for c in critiques if not c.meta.get("label_correct")]
    good = [c for c in critiques if c.meta.get("label_correct")]
    rng.shuffle(bad)
    rng.shuffle(good)
    out = []
    while len(out) < k and (bad or good):
        for pool in (bad, good):
            if pool and len(out) < k:
                out.append(pool.pop())
    return out


def show_example(c: CritiqueRecord) -> str:
    lab = "correct" if c.meta.get("label_correct") else "incorrect"
    return (
        f"--- critique {c.id} (student solution is {lab}; generator {c.meta.get('generator')}) ---\n"
        f"[prompt]\n{c.prompt}\n\n[critique]\n{c.text}\n\n"
        f"[parsed] verdict={c.verdict} first_error_step={c.first_error_step} final_answer={c.final_answer}\n"
    )


# --- whole stage -------------------------------------------------------------------------------------
def run(cfg: StudyConfig, tables: bool = True) -> common.StageReport:
    """The whole stage (cached when finished); with ``tables`` also its report (:func:`report`),
    which is what notebook 02 shows. The sweeps pass ``tables=False`` and use ``.stage``."""
    cfg = generating_cfg(cfg)  # an arm sharing another row's critiques computes (or reuses) that row's stage
    st = stage(cfg)
    if not st.done:
        cfg = st.record(cfg)  # the stage computes with a view that checks its key (scrit_utils.core.inputs)
        common.setup_torch(cfg)
        problems, solutions = data.load_outputs(st.up(data.STAGE))
        pairs = make_pairs(problems, solutions, cfg.run.seed, cfg.self_critique.max_pairs)
        write_jsonl(st.path("pairs.jsonl"), pairs)
        crits = generate_critiques(cfg, st, pairs, problems, solutions)
        finish(st, pairs, crits)
    return report(cfg, st) if tables else common.StageReport(st, st.manifest["counts"])


def report(cfg: StudyConfig, st: artifacts.Stage) -> common.StageReport:
    """Pairs, verdict-vs-label table and worked examples of a finished stage, from its files."""
    import pandas as pd

    pairs = read_jsonl(st.dir / "pairs.jsonl", Pair)
    crits = load_outputs(st)
    rep = common.StageReport(st, st.manifest["counts"])
    rep.examples["pairs"] = pd.DataFrame([p.__dict__ for p in pairs[:5]])
    rep.examples["pairing"] = (f"{len(pairs)} pairs; {sum(p.label_correct for p in pairs)} of correct solutions, "
                               f"{sum(p.reference_solution_id is None for p in pairs)} use the problem's own "
                               "reference solution")
    rep.examples["verdicts"] = summary_table(crits)
    rep.examples["worked"] = [show_example(c) for c in
                              worked_examples(crits, cfg.self_critique.examples_shown, cfg.run.seed)]
    return rep


def finish(st: artifacts.Stage, pairs, crits) -> dict:
    if st.done:  # cached: keep the original manifest
        return st.manifest
    c = Counter(c.verdict for c in crits)
    return st.finish(counts={
        "pairs": len(pairs),
        "pairs_reference_is_problem_reference": sum(p.reference_solution_id is None for p in pairs),
        "critiques": len(crits),
        "verdict_correct": c[True],
        "verdict_incorrect": c[False],
        "unparsed": c[None],
    })


def load_outputs(st: artifacts.Stage) -> list[CritiqueRecord]:
    if not st.done:
        raise RuntimeError(f"{STAGE} ({st.dir}) has not finished")
    return read_jsonl(st.dir / "critiques.jsonl", CritiqueRecord)
