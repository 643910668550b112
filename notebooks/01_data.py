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

# %% tags=["parameters"]
profile = "configs/toy.yaml"  # the study profile: an interactive run reads the study's cached stages
overrides = []  # optional profile overrides: a list of strings, as with scrit run --set

# %%
import pandas as pd
from IPython.display import Markdown, display

from scrit_utils import config
from scrit_utils.pipeline import common, data

cfg = config.load(profile, overrides)
common.setup_torch(cfg)
st = data.stage(cfg)
print(f"profile {cfg.run.name}: stage {st.name}/{st.hash} ({'cached' if st.done else 'to compute'})")

# %% [markdown]
# ## Problems with reference answers
# In the toy world the problems are multi-step integer calculations with an exact reference
# solution; with real data they come from the sources listed in the profile.

# %%
problems = data.load_problems(cfg)
data.write_problems(st, problems)
pd.DataFrame([{"question": p.question, "answer": p.answer, "steps": p.meta.get("n_steps")} for p in problems[:5]])

# %%
print(problems[0].reference_solution)

# %% [markdown]
# ## Solutions from several generators
# Each generator samples solutions with the solve prompt; every request has its own seed
# derived from (profile seed, stage, generator, problem, sample), so a resumed run writes the
# same text. Each solution is graded against the reference answer as it is written.

# %%
solutions = data.generate_solutions(cfg, st, problems)
pd.DataFrame([{"generator": s.generator, "final_answer": s.final_answer, "correct": s.is_correct,
               "text": s.text[:80]} for s in solutions[:6]])

# %% [markdown]
# ## Keep problems with mixed labels, cap each generator

# %%
kept_problems, kept_solutions = data.filter_and_cap(cfg, problems, solutions)
print(f"kept {len(kept_problems)} of {len(problems)} problems, {len(kept_solutions)} of {len(solutions)} solutions")

# %% [markdown]
# ## Statistics
# Per generator: solve accuracy and what was kept. Per difficulty: the paper measures a
# problem's difficulty by how many *different* final answers the generators give.

# %%
per_gen, per_diff = data.save_outputs(cfg, problems, solutions, kept_problems, kept_solutions)
display(Markdown("**Per generator**"), per_gen, Markdown("**Per number of distinct answers**"), per_diff)

# %%
if problems and "n_steps" in problems[0].meta:  # toy world: a second difficulty axis, the number of steps
    per_steps = data.per_steps_table(problems, solutions)
    common.save_table(cfg, per_steps, "01_per_steps")
    display(per_steps)

# %% [markdown]
# Figures and tables were saved under `results/figures/<profile>/01_solutions.{png,pdf}` and
# `results/tables/<profile>/01_*.{csv,md}`. Finally the manifest is written (last), which marks
# the stage as finished.

# %%
manifest = data.finish(cfg, st, problems, solutions, kept_problems, kept_solutions)
manifest["counts"]

# %% tags=["interpretation"]
from scrit_utils import interpret

display(Markdown(interpret.data_01(manifest["counts"], per_gen)))
