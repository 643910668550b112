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
profile = "configs/toy.yaml"  # the study profile: an interactive run reads the study's cached stages
overrides = []  # optional profile overrides: a list of strings, as with scrit run --set

# %%
import pandas as pd

from scrit_utils import config
from scrit_utils.pipeline import common, data, self_critic

cfg = config.load(profile, overrides)
common.setup_torch(cfg)
st = self_critic.stage(cfg)
print(f"stage {st.name}/{st.hash} ({'cached' if st.done else 'to compute'}), mode = {cfg.self_critique.mode}")

# %% [markdown]
# ## Pairs

# %%
problems, solutions = data.load_outputs(st.up(data.STAGE))
pairs = self_critic.make_pairs(problems, solutions, cfg.run.seed, cfg.self_critique.max_pairs)
pd.DataFrame([p.__dict__ for p in pairs[:5]])

# %%
print(f"{len(pairs)} pairs; {sum(p.label_correct for p in pairs)} of correct solutions, "
      f"{sum(p.reference_solution_id is None for p in pairs)} use the problem's own reference solution")

# %% [markdown]
# ## Critiques
# Sampled with the critic's own per-item seeds; written item by item, so an interrupted run
# resumes where it stopped.

# %%
from scrit_utils.records import write_jsonl

write_jsonl(st.path("pairs.jsonl"), pairs)
critiques = self_critic.generate_critiques(cfg, st, pairs, problems, solutions)
self_critic.summary_table(critiques)

# %% [markdown]
# The table compares the critic's conclusion with the known label of the student solution —
# a first look at quality. Stage 03 decides which critiques are kept.
#
# ## Worked examples

# %%
for c in self_critic.worked_examples(critiques, cfg.self_critique.examples_shown, cfg.run.seed):
    print(self_critic.show_example(c))

# %%
manifest = self_critic.finish(st, pairs, critiques)
manifest["counts"]

# %% tags=["interpretation"]
from IPython.display import Markdown, display

from scrit_utils import interpret

display(Markdown(interpret.critique_02(manifest["counts"])))
