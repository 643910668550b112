"""The toy base models' recipe as data: sizes, phases, the named recipes (:data:`RECIPES`: v2 = the
committed models, v3 = issue #24's) and :class:`BuildConfig` (a profile's ``base_models`` section). On the core floor so the profile schema checks that section's keys without
importing the builder (:mod:`scrit_utils.toy_models.build` runs the recipe and re-exports these)::

    from scrit_utils.core.toy_recipe import BuildConfig, SIZES
    BuildConfig(sizes=("toy-66k",)).steps_for(66_000)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from scrit_utils.core.arith_config import ArithConfig

TOKENIZER_DIR = "tokenizer"
#: batch kinds a phase can mix; "inject" (v3) = the bug-injection instruction: a correct solution in the
#: study's bug-injection prompt -> the world's injected solution between the INJECTED_SOLUTION markers
BATCH_KINDS = ("drill", "solve", "direct", "contrastive", "inject")


@dataclass(frozen=True)
class SizeSpec:
    """Width and depth: the only things that differ between sizes (besides the scaled step count)."""

    name: str
    hidden: int
    layers: int
    heads: int
    intermediate: int


#: the shipped sizes, 66K-709K parameters (10.8x)
SIZES: dict[str, SizeSpec] = {
    s.name: s
    for s in (
        SizeSpec("toy-66k", hidden=48, layers=2, heads=4, intermediate=96),
        SizeSpec("toy-150k", hidden=64, layers=3, heads=4, intermediate=128),
        SizeSpec("toy-409k", hidden=96, layers=4, heads=4, intermediate=192),
        SizeSpec("toy-709k", hidden=128, layers=4, heads=4, intermediate=256),
    )
}


@dataclass(frozen=True)
class Phase:
    """One phase of the recipe: ``share`` of the size's steps with one batch mixture and schedule.

    Every phase starts a fresh AdamW with ``warmup`` linear warm-up steps and cosine decay to
    ``min_lr_ratio`` x ``lr``. ``mix`` weights the batch kinds (:data:`BATCH_KINDS`, in that order).
    Loss weights: ``verdict_weight`` on verdict tokens; ``copy_weight`` on the two compared values of
    a ``wrong`` line (without it a solver writes its own value twice and never sees a mismatch);
    ``ref_weight`` on the reference-determined tokens of contrastive targets (checked values, the
    correction's numbers), so copying the reference is what lowers their loss.
    """

    name: str
    share: float
    mix: tuple[float, ...]  # drill, solve, direct, contrastive, inject
    lr: float
    warmup: int = 50
    verdict_weight: float = 2.0
    copy_weight: float = 10.0
    ref_weight: float = 1.0

    def __post_init__(self) -> None:
        # a 4-weight mix was written before the inject kind existed (the v2 recipe, older profiles, the
        # build_info of the committed models): it means no inject batches. A trailing 0 weight leaves
        # random.choices' draw unchanged (same cumulative weights, one random() call), so v2 batches are
        # exactly what they were.
        if len(self.mix) == len(BATCH_KINDS) - 1:
            object.__setattr__(self, "mix", (*self.mix, 0.0))


#: the v2 recipe (models/README.md says why each phase is there; pilots on toy-150k, 3996 steps)
RECIPE: tuple[Phase, ...] = (
    # arithmetic first: copying operands and computing, before any critique (toy-150k: 59% greedy after
    # these 1399 steps). Mixing the critique formats in from the start starved solving (4% after 2398 steps).
    Phase("solve", share=0.35, mix=(0.0, 1.0, 0.0, 0.0), lr=2e-3, warmup=100),
    # the critique formats, the compare drill and the reference, with solving kept at 40% of the batches.
    # The lr has to be this high for the formats: at 1e-3 (60% solve) toy-150k learned none of them (CC mix
    # 2.5 / 7.5 without / with reference); at 1.5e-3 it solves 70% greedy and reaches 21.2 / 36.2.
    Phase("critique", share=0.65, mix=(0.1, 0.4, 0.15, 0.35), lr=1.5e-3, warmup=100, verdict_weight=5.0,
          ref_weight=5.0),
)

#: the v3 recipe (issue #24 item 3): v2's two phases, with the bug-injection instruction mixed into the critique
#: phase as one more batch kind, so the bases can write the bug themselves as an instruct LLM does (the paper's
#: bug-injection arm). Its share (10%) is taken from solving (40% -> 35%), which it partly replaces (an inject
#: target recomputes every step after the error). Not piloted yet: to be checked on the dev pilot before the
#: builds are frozen (results/pilot/PREREGISTRATION_v3.md). The step floor that makes every size competent is
#: BuildConfig.min_train_steps (configs/base_models/v3_world.yaml), not a phase.
RECIPE_V3: tuple[Phase, ...] = (
    Phase("solve", share=0.35, mix=(0.0, 1.0, 0.0, 0.0, 0.0), lr=2e-3, warmup=100),
    Phase("critique", share=0.65, mix=(0.1, 0.35, 0.15, 0.35, 0.1), lr=1.5e-3, warmup=100, verdict_weight=5.0,
          ref_weight=5.0),
)

#: named recipes a profile selects with ``base_models.recipe: <name>``
RECIPES: dict[str, tuple[Phase, ...]] = {"v2": RECIPE, "v3": RECIPE_V3}
#: the ``recipe_version`` a build of each named recipe records; a model dir counts as current only for its
#: own version (v2 = 3: the committed models/ and models/seed1/ must stay current)
RECIPE_VERSIONS: dict[str, int] = {"v2": 3, "v3": 4}

_HARD_WORLD = dict(max_start=999, max_addend=999, max_factor=19, max_value=9999)


@dataclass(frozen=True)
class BuildConfig:
    out_dir: str = "models"
    sizes: tuple[str, ...] = tuple(SIZES)
    seed: int = 0
    world: ArithConfig = field(default_factory=ArithConfig)
    vocab_size: int = 384
    # key/value heads of every size: None = one per query head (v2); fewer = grouped-query attention, as the
    # Qwen2.5 models share one KV head among 7 query heads (the decode step reads a KV cache that many times smaller)
    kv_heads: int | None = None
    # the seed of ground-truth critiques: contrastive ones from the study's world and from copy_world,
    # direct (no-reference) ones only from direct_world (format without the skill; module doc)
    n_seed_contrastive: int = 3000
    n_seed_copy: int = 3000
    n_seed_direct: int = 3000
    copy_world: ArithConfig = field(default_factory=lambda: ArithConfig(**_HARD_WORLD))
    direct_world: ArithConfig = field(default_factory=lambda: ArithConfig(**_HARD_WORLD))
    seed_wrong_fraction: float = 0.5
    # a named recipe (RECIPES; the profile's ``recipe: v3``) or a list of phases; recipe_name says which named
    # recipe the phases are (or are a variant of): it sets the recipe_version the build records
    recipe: tuple[Phase, ...] = RECIPE
    recipe_name: str = "v2"
    # the share of the direct seed critiques drawn from the study's world instead of direct_world: 0 (v2, v3)
    # keeps the base blind without a reference; > 0 gives a smaller reference gap (the headroom variant)
    direct_inworld_fraction: float = 0.0
    # copy this tokenizer dir into out_dir/tokenizer instead of training one, so several builds share one
    # tokenizer and the build seed varies only the models' training (v2's seed1/ was made so by hand)
    tokenizer_from: str | None = None
    # compute-scaled step count: steps_base at steps_ref_params parameters, never below min_train_steps
    steps_base: int = 4000
    steps_ref_params: int = 150_000
    steps_exponent: float = 0.3
    min_train_steps: int = 0  # floor on the compute-scaled count (before steps_scale); 0 = none (v2)
    steps_scale: float = 1.0  # multiply every size's step count (pilots, tests)
    max_steps: int | None = None  # hard cap on the total steps (tests)
    solve_batch: int = 32
    seed_batch: int = 16
    inject_batch: int = 16  # bug-injection examples per inject batch (about as long as a seed critique)
    drill_batch: int = 24  # sequences of drill_lines_per_seq lines each
    drill_lines_per_seq: int = 6
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    log_every: int = 25
    ckpt_every: int = 250
    threads: int = 1  # torch threads per training process
    jobs: int = 2  # models trained concurrently (separate processes)

    def __post_init__(self) -> None:
        if isinstance(self.recipe, str):  # a named recipe: its phases, and its name for the recipe_version
            if self.recipe not in RECIPES:
                raise ValueError(f"base_models.recipe: unknown recipe {self.recipe!r}; named recipes: {list(RECIPES)}")
            object.__setattr__(self, "recipe_name", self.recipe)
            object.__setattr__(self, "recipe", RECIPES[self.recipe])
        if self.recipe_name not in RECIPE_VERSIONS:
            raise ValueError(f"base_models.recipe_name: unknown recipe {self.recipe_name!r}; named recipes: "
                             f"{list(RECIPE_VERSIONS)}")
        if not 0.0 <= self.direct_inworld_fraction <= 1.0:
            raise ValueError(f"base_models.direct_inworld_fraction: must be in [0, 1], got {self.direct_inworld_fraction}")
        if self.min_train_steps < 0:
            raise ValueError(f"base_models.min_train_steps: must be >= 0, got {self.min_train_steps}")
        if not self.recipe:
            raise ValueError("base_models.recipe: needs at least one phase")
        for i, ph in enumerate(self.recipe):
            if len(ph.mix) != len(BATCH_KINDS) or min(ph.mix) < 0 or sum(ph.mix) <= 0:
                raise ValueError(f"base_models.recipe[{i}] ({ph.name}): mix needs {len(BATCH_KINDS)} weights "
                                 f"{BATCH_KINDS} (or the first {len(BATCH_KINDS) - 1}: no inject), non-negative, "
                                 f"not all 0; got {ph.mix}")
            if ph.share <= 0:
                raise ValueError(f"base_models.recipe[{i}] ({ph.name}): share must be > 0, got {ph.share}")

    @property
    def recipe_version(self) -> int:
        """What ``build_info.json`` records; :func:`scrit_utils.toy_models.info.is_current` compares it."""
        return RECIPE_VERSIONS[self.recipe_name]

    def steps_for(self, n_params: int) -> int:
        """Total optimizer steps of a model with ``n_params`` parameters: compute-scaled, at least
        ``min_train_steps`` (v2's toy-66k learned nothing in its 3123), then ``steps_scale`` and ``max_steps``."""
        scaled = self.steps_base * (n_params / self.steps_ref_params) ** self.steps_exponent
        n = max(scaled, self.min_train_steps) * self.steps_scale
        n = min(int(round(n)), self.max_steps) if self.max_steps else int(round(n))
        return max(len(self.recipe), n)  # every phase runs at least one step

    def phase_bounds(self, total: int) -> list[tuple[int, int]]:
        """[start, end) step range of each phase: shares normalised, every phase at least one step."""
        s, n = sum(p.share for p in self.recipe), len(self.recipe)
        cuts = [0]
        acc = 0.0
        for i, p in enumerate(self.recipe):
            acc += p.share / s
            # at least one step for this phase, and one left for each later phase
            cuts.append(min(max(cuts[-1] + 1, int(round(acc * total))), total - (n - i - 1)))
        cuts[-1] = total
        return [(cuts[i], cuts[i + 1]) for i in range(len(self.recipe))]
