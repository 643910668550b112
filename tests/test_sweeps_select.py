"""Training-set selection for the sweeps: nested, balanced subsets and check ablations from stage-03 records."""
from __future__ import annotations

from scrit_utils.study import sweeps
from scrit_utils.core.records import SFTExample


def _ex(i: int, ok: bool, d: int = 1) -> SFTExample:
    return SFTExample(id=f"e{i}", prompt=[{"role": "user", "content": "q"}], completion="c", label_correct=ok,
                      meta={"problem_id": f"p{i}", "d": d})


POOL = [_ex(i, i % 3 != 0, d=i % 5) for i in range(60)]


def test_subsets_are_nested_and_balanced():
    prev: list = []
    for n in (4, 8, 16, 32):
        sub = sweeps.nested_subset(POOL, n, 0.5)
        assert len(sub) == n and sum(e.label_correct for e in sub) == n // 2
        pos = [e.id for e in sub if e.label_correct]
        neg = [e.id for e in sub if not e.label_correct]
        ppos = [e.id for e in prev if e.label_correct]
        pneg = [e.id for e in prev if not e.label_correct]
        assert pos[: len(ppos)] == ppos and neg[: len(pneg)] == pneg  # smaller subset = prefix per class
        prev = sub


def test_subset_shrinks_when_a_class_runs_out_and_ratio_is_respected():
    sub = sweeps.nested_subset(POOL, 100, 0.5)  # 20 incorrect in the pool
    assert sum(not e.label_correct for e in sub) == 20 and sum(e.label_correct for e in sub) == 40
    r = sweeps.nested_subset(POOL, 20, 0.75)
    assert sum(e.label_correct for e in r) == 15 and len(r) == 20


def test_order_puts_easiest_first():
    sub = sweeps.nested_subset(POOL, 10, 0.5, order=lambda e: e.meta["d"])
    assert max(e.meta["d"] for e in sub) <= 1
    hard = sweeps.nested_subset(POOL, 10, 0.5, order=lambda e: -e.meta["d"])
    assert min(e.meta["d"] for e in hard) >= 3


def test_ablation_catalogue_covers_the_paper_table():
    for name in ("no_validation", "only_direct_critic", "only_answer", "only_verdict", "easiest_family",
                 "easier_first", "harder_first", "single_generator", "ratio_0.75", "ratio_0.25"):
        assert name in sweeps.ABLATIONS
    assert sweeps.CHECK_SETS["no_validation"] == ()


def test_epoch_budget_sweeps_train_for_epochs_not_one_step(tmp_path):
    """sweeps.sft_max_steps <= 0 means the paper's fixed epochs: training.max_steps -1, which TRL reads as
    "use num_train_epochs" (a literal 0 made transformers train a single step, silently)."""
    from scrit_utils.core import config
    from scrit_utils.pipeline import training

    cfg = config.load("configs/smoke.yaml", ["sweeps.sft_max_steps=0", "training.num_train_epochs=3"])
    pt = sweeps.point_cfg(cfg, seed=1)
    assert pt.training.max_steps == -1 and pt.training.seed == 1
    assert training.sft_config(pt, tmp_path).max_steps == -1
    assert training.sft_config(config.load("configs/smoke.yaml", ["training.max_steps=0"]), tmp_path).max_steps == -1
    assert sweeps.point_cfg(config.load("configs/smoke.yaml"), 0).training.max_steps == config.load("configs/smoke.yaml").sweeps.sft_max_steps
