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
from IPython.display import Markdown, display

from scrit_utils.core import config
from scrit_utils.study import interpret
from scrit_utils.pipeline import self_critic

cfg = config.load(profile, overrides)
st = self_critic.stage(cfg)
print(f"stage {st.name}/{st.hash} ({'cached' if st.done else 'to compute'}), mode = {cfg.self_critique.mode}")

# %% [markdown]
# ## The stage
# `self_critic.run` pairs the solutions of 01 by the rule above and samples the critiques with the
# critic's own per-item seeds, written item by item, so an interrupted run resumes where it
# stopped (or reuses the finished stage).

# %%
rep = self_critic.run(cfg)
rep.counts

# %% [markdown]
# ## Pairs

# %%
display(rep.examples["pairs"])
print(rep.examples["pairing"])

# %% [markdown]
# ## Critiques
# The critic's conclusion against the known label of the student solution — a first look at
# quality. Stage 03 decides which critiques are kept.

# %%
rep.examples["verdicts"]

# %% [markdown]
# ## Worked examples

# %%
for text in rep.examples["worked"]:
    print(text)

# %% tags=["interpretation"]
display(Markdown(interpret.critique_02(rep.counts)))
