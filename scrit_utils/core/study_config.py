"""The profile's study sections (notebooks 05 and 06): ``sweeps`` and ``ablations``.

Part of :class:`scrit_utils.core.config.StudyConfig` (which re-exports both classes); one comment per key.
Keys added after results were committed carry :data:`~scrit_utils.core.config_schema.HASHED_WHEN_SET`: at their
default they are left out of every stage hash, so the caches and committed results of the profiles that do not
set them stay valid.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from scrit_utils.core.config_schema import HASHED_WHEN_SET
from scrit_utils.core.rounds_config import RoundsProtocolConfig


@dataclass(frozen=True)
class SweepsConfig:
    """Notebook 05 (scaling): owned by the Study contributor (scrit_utils/study/sweeps.py)."""

    data_sizes: tuple[int, ...] = ()  # nested SFT subset sizes (0 = the base critic)
    critic_modes: tuple[str, ...] = ("contrastive",)  # rows of scrit_utils.core.arms.ARMS
    # an arm whose validated set cannot fill its largest data size draws more problems, up to its row's
    # max_draws (v3: the direct arm along SCRIT's whole axis); false = the profile's problems only (v2)
    draw_to_fill: bool = False
    seeds: tuple[int, ...] = (0,)  # SFT seeds per point (training.seed)
    baseline_data_sizes: tuple[int, ...] = ()  # data sizes for the non-contrastive critic modes (empty = data_sizes)
    sft_max_steps: int = 30  # fixed SFT step budget for every sweep point (<= 0: training.num_train_epochs each)
    sft_batch_size: int | None = None  # training.per_device_train_batch_size for sweep points (None = profile's)
    eval_items: int | None = None  # evaluation.n_items for sweep points (None = profile's)
    model_sizes: tuple[str, ...] = ()  # base critics (paths / hub ids) for the model-size sweep
    # base-model build folders: the sweep runs once per build (scrit_utils/study/builds.py); empty = one build
    builds: tuple[str, ...] = field(default=(), metadata={HASHED_WHEN_SET: True})
    # build folders of the critic's size built with a smaller reference gap (configs/base_models/v3_world.yaml
    # variants.inworld25), one per entry of builds (paired by position): each build's base and SCRIT at
    # model_size_data with that variant's critic, beside the build's own critic, to show how SCRIT's gain depends
    # on the headroom (reported, not a claim); empty = no headroom points
    headroom_builds: tuple[str, ...] = field(default=(), metadata={HASHED_WHEN_SET: True})
    # arms (those the profile runs) also scored on the injected-error diagnostic at their top size, with the base
    diagnostic_arms: tuple[str, ...] = field(default=(), metadata={HASHED_WHEN_SET: True})
    # most problems (a multiple of the profile's) a base size short of model_size_data examples may draw, with
    # draw_to_fill: the gain-slope claim needs the same count at every size (1 = the profile's problems only)
    model_size_draws: float = field(default=1.0, metadata={HASHED_WHEN_SET: True})
    model_size_data: int | None = None  # SFT examples for model sizes and rounds (None = largest data size)
    rounds: int = 1  # multi-round: rounds of regenerate -> validate -> SFT
    max_pairs: int | None = None  # self_critique.max_pairs for other critics' arms (model sizes, rounds 2+)
    # how rounds 2..R train (continue / retrain, replay, chains); the defaults are v2's (core/rounds_config.py)
    rounds_protocol: RoundsProtocolConfig = field(default_factory=RoundsProtocolConfig)
    readme: str = "README.md"  # study README (under run.results_dir)
    timing: str = "timing.md"  # timing report (under run.results_dir)
    # other runs (run.name) of the same design, e.g. on bases built with another seed: the README puts their
    # committed verdicts (results/tables/<name>/06_paper_comparison.csv) beside this run's and lists the flips
    compare_runs: tuple[str, ...] = ()


@dataclass(frozen=True)
class AblationsConfig:
    """Notebook 06 (ablations, paper Table 4 analogues): owned by the Study contributor."""

    data_size: int | None = None  # SFT examples per ablation (None = middle data size)
    variants: tuple[str, ...] = ()  # names from scrit_utils.study.sweeps.ABLATIONS (empty = all)
    easy_family_max_steps: int = 3  # toy family "short": problems with <= this many operations
    single_generators: tuple[str, ...] = ()  # generators for "single generator" (empty = every one)
