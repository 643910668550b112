# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Contrastive self-critique
#
# The model being improved now writes critiques of the solutions from 01 — while looking at a
# **correct reference solution** of the same problem. This is SCRIT's trick: comparing with a
# known-good solution makes critiques far more reliable than critiquing blind, and no stronger
# teacher or human label is needed.
#
# Pairing rule: an *incorrect* solution gets a random correct solution of the same problem as
# reference; a *correct* solution gets a *different* correct one (or, if there is none, the
# problem's own reference solution). One generation has four parts: reference analysis →
# step-by-step critique that stops at the first error → conclusion → correction.
#
# The profile can switch the mode to the two baselines used by the ablations: `direct` (the same
# critic without a reference) and `bug_injection` (the model corrupts a correct solution, then
# critiques its own corruption).

# %% tags=["parameters"]
profile = None  # None: configs/toy.yaml when its stage for this notebook is cached, else configs/smoke.yaml
overrides = []  # profile overrides: a list of "dotted.key=value" strings, as with scrit run --set
write_results = False  # interactive runs write to results/interactive/; True: to results/ (the committed results)

# %%
from IPython.display import Markdown, display

from scrit_utils.core import notebook_env
from scrit_utils.study import interpret
from scrit_utils.pipeline import self_critic

cfg = notebook_env.load(profile, overrides, self_critic.stage, write_results)
print(f"critic mode: {cfg.self_critique.mode}")

# %% [markdown]
# ## The stage
# `self_critic.run` pairs the solutions of 01 by the rule above and samples the critiques with the
# critic's own per-item seeds, written item by item, so an interrupted run resumes where it
# stopped (or reuses the finished stage).

# %%
rep = self_critic.run(cfg)
rep.counts

# %% [markdown]
# `rep.counts`: one critique per pair (`generation.critique.n`); `verdict_correct` / `verdict_incorrect`
# count the critiques' conclusions, `unparsed` those whose conclusion could not be read.
#
# ## Pairs
# The first pairs, by id: the student solution, the reference solution shown beside it (None: the
# problem's own reference solution) and the student solution's label.

# %%
display(rep.examples["pairs"])
print(rep.examples["pairing"])

# %% [markdown]
# ## Critiques
# The critic's conclusion against the known label of the student solution — a first look at
# quality. The rows `correct · Incorrect` (a false alarm) and `incorrect · Correct` (a missed error)
# are wrong critiques; stage 03 decides which critiques are kept.

# %%
rep.examples["verdicts"]

# %% [markdown]
# ## Worked examples
# `self_critique.examples_shown` critiques drawn at random (profile seed), alternating incorrect and
# correct student solutions: not picked to look good, so wrong critiques show up about as often as the
# table above says. Each shows the prompt (problem, reference, student solution), the critique as
# generated and what the parser read from it.
#
# How to read a step line of the toy critic: `200-11=189|199 ok` is the step's operation, the value
# the critic computes for it (189, left of `|`), the student's value (199, right of `|`) and the
# critic's judgement (`ok` or `wrong`). The judgement should say whether the two values are equal; the
# toy critics copy both values well but learn that comparison slowly (`world.arith.verdict_rule`,
# off in the study, would enforce it at decoding time).
#
# So a critique can be wrong in a visible way. In the toy study's run
# (`results/runs/toy/02_self_critique.ipynb`) the first example is one: the student wrote
# `200-11=199`, the critic computed 189, wrote `189|199 ok` and concluded "Correct" with first error
# step -1 about an incorrect solution (a missed error, a row `incorrect · Correct` above). Its
# correction keeps the reference answer 189, so check (ii) of stage 03 alone would keep it; check
# (iii), verdict against label, drops it. A critique whose correction ends at the wrong number (e.g.
# after a garbled student solution, whose steps the critic cannot follow) fails check (ii).

# %%
for text in rep.examples["worked"]:
    print(text)

# %% tags=["interpretation"]
display(Markdown(interpret.critique_02(rep.counts)))
