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
# # 01 · Problems and solutions
#
# SCRIT starts from problems whose final answer is known and from solutions written by
# *several* generator models. Each solution is graded against the reference answer, and only
# problems with at least one correct **and** one incorrect solution are kept: those are the
# problems where a critic has something to tell apart. Each generator's share is capped so no
# single model dominates.
#
# Everything this notebook computes lands in `artifacts/01_data/<hash>/` (the hash covers the
# profile keys this stage reads); a finished stage is reused, an interrupted one resumes.
#
# Run it with `scrit run --profile configs/toy.yaml --only 01`, or open it in JupyterLab (`make lab`):
# with the parameters below it then reads the study's cached stage when there is one, and otherwise
# runs the smoke profile (tiny settings, under a minute), writing to `results/interactive/`
# (`notebooks/README.md`).

# %% tags=["parameters"]
profile = None  # None: configs/toy.yaml when its stage for this notebook is cached, else configs/smoke.yaml
overrides = []  # profile overrides: a list of "dotted.key=value" strings, as with scrit run --set
write_results = False  # interactive runs write to results/interactive/; True: to results/ (the committed results)

# %%
from IPython.display import Markdown, display

from scrit_utils.core import notebook_env
from scrit_utils.study import interpret
from scrit_utils.pipeline import data

cfg = notebook_env.load(profile, overrides, data.stage, write_results)

# %% [markdown]
# ## The stage
# `data.run` does the whole stage, or reuses it when it has finished:
#
# 1. **problems with reference answers**: in the toy world multi-step integer calculations with an
#    exact reference solution; with real data the sources listed in the profile;
# 2. **solutions from several generators**: each samples solutions with the solve prompt; every
#    request has its own seed derived from (profile seed, stage, generator, problem, sample), so a
#    resumed run writes the same text; each solution is graded against the reference answer as it
#    is written;
# 3. **keep problems with mixed labels, cap each generator**;
# 4. **statistics** per generator and per difficulty (tables and figure saved under
#    `results/tables/<profile>/01_*` and `results/figures/<profile>/01_solutions.*`).
#
# The manifest is written last; it marks the stage as finished.

# %%
rep = data.run(cfg)
rep.counts

# %% [markdown]
# `rep.counts`: `problems_all` problems were drawn and each generator wrote `generation.solve.n` solutions
# per problem (`solutions_all`); `problems` and `solutions` are what step 3 kept, with their labels split
# into `solutions_correct` and `solutions_incorrect`.
#
# ## Problems with reference answers
# The first problems of the stage, with their reference answer and number of operations (`steps`),
# then the first problem's reference solution: one line per operation, the running value after each,
# and the final answer in `\boxed{}` -- the format the generators were trained to write and the
# critic checks step by step.

# %%
display(rep.examples["problems"])
print(rep.examples["reference_solution"])

# %% [markdown]
# ## Solutions from several generators
# The first sampled solutions, as written: `final_answer` is what the grader read from the
# `\boxed{}` (empty when there is none) and `correct` compares it with the reference answer. The
# generators sample at `generation.solve.temperature` (1.5 in the toy study, chosen so that about half
# of the solutions are wrong), so some solutions are garbled text rather than arithmetic slips (e.g. a
# sentence of critique vocabulary inside the first step); they count as incorrect, and the
# `no_answer` column below counts those without a final answer.

# %%
display(rep.examples["solutions"])
print(rep.examples["kept"])

# %% [markdown]
# ## Statistics
# Per generator: solve accuracy and what was kept. Per difficulty: the paper measures a
# problem's difficulty by how many *different* final answers the generators give.

# %%
display(Markdown("**Per generator**"), rep.tables["01_per_generator"],
        Markdown("**Per number of distinct answers**"), rep.tables["01_per_difficulty"])
if "01_per_steps" in rep.tables:  # toy world: a second difficulty axis, the number of steps
    display(Markdown("**Per number of steps**"), rep.tables["01_per_steps"])
display(rep.figures["01_solutions"])

# %% tags=["interpretation"]
display(Markdown(interpret.data_01(rep.counts, rep.tables["01_per_generator"])))
