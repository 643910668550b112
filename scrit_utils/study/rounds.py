"""The rounds study's chains and training sets (``sweeps.rounds``, ``sweeps.rounds_protocol``; issue #24 item 5).

The frame is the paper's: every round critiques and validates the same solution pool (stages 01-03 with
the round's critic), and the round-k model is the new base that critiques, validates and is fine-tuned
again. :class:`scrit_utils.core.rounds_config.RoundsProtocolConfig` says how round k >= 2 trains:

- ``continue``: the chain's round-(k-1) model, at ``lr_factor`` x the learning rate, on round k's examples
  plus ``replay`` of each earlier round's own examples;
- ``retrain``: the profile's base, at the profile's learning rate, on the pooled examples of rounds 1..k.

A chain is the unit that replicates the round slope: chain c trains with SFT seed ``sweeps.seeds[c]`` in
every round and its own model is its next parent, so no two chains share a parent after round 1 (round 1's
data come from the base critic for every chain; its SFT seed already differs). ``chains: 0`` is v2's design:
one chain through ``sweeps.seeds[0]``, and every seed of round k trains from that chain's parent.

Examples of an earlier round j keep their content but get the id ``r<j>@<stage hash>/<id>``: the same pair
critiqued by two rounds' critics would otherwise share an id, and the SFT stage key (the example ids' hash,
:func:`scrit_utils.study.selection.example_ids_hash`) then also names the stage-03 every replayed example came
from. Round k's own examples keep their ids, so round 1 is the data sweep's SFT point at the same size and
the v2 defaults train exactly the stages they trained before.

This module only plans: :func:`plan` takes the two steps that touch models as callables (``data_for``:
stages 01-03 with a critic; ``train``: the SFT stage of a point); :func:`scrit_utils.study.sweeps.round_jobs`
passes the real ones and turns the points into study jobs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from scrit_utils.core.config import ConfigError, StudyConfig
from scrit_utils.core.records import SFTExample
from scrit_utils.study.selection import nested_subset

ARM = "scrit"  # rows' arm of the primary (first) protocol: what the rounds claim and the paper comparison read


@dataclass(frozen=True)
class RoundData:
    """One round's data from one parent critic: its stage-03 and the round's own SFT examples."""

    stage: Any  # scrit_utils.core.artifacts.Stage (only ``.hash`` is read here)
    examples: tuple  # nested subset of the round's validated candidates (sweeps.model_size_data)


@dataclass(frozen=True)
class RoundPoint:
    """One SFT point of the rounds study: which model critiqued its data, which one is fine-tuned, on what."""

    arm: str  # rows' arm (:func:`arm_name`)
    protocol: str  # continue | retrain
    round: int  # 1..sweeps.rounds
    chain: int | None  # None: v2's one shared parent
    seed: int  # SFT seed (training.seed)
    critic: str | None  # the model that critiqued and validated this round's data (None = the profile's base)
    init: str | None  # the model fine-tuned (None = the profile's base)
    lr_factor: float  # x training.learning_rate
    data: RoundData  # this round's data
    examples: tuple  # the training set: earlier rounds' (replayed / pooled) examples, then this round's
    n_earlier: int  # how many of ``examples`` come from earlier rounds
    parent_of_next: bool  # this point's model critiques the chain's next round


# --- the chains ---------------------------------------------------------------------------------------------
def arm_name(cfg: StudyConfig, protocol: str) -> str:
    arms = cfg.sweeps.rounds_protocol.arms
    return ARM if protocol == arms[0] else f"{ARM}:{protocol}"


def chain_seeds(cfg: StudyConfig) -> list[tuple[int | None, int]]:
    """``[(chain, seed whose model is the chain's next parent)]``: ``[(None, seeds[0])]`` for v2's shared parent."""
    sw = cfg.sweeps
    n = sw.rounds_protocol.chains
    if n == 0:
        return [(None, sw.seeds[0])]
    if n > len(sw.seeds):
        raise ConfigError(f"{cfg.source}: sweeps.rounds_protocol.chains: {n} chains need {n} SFT seeds "
                          f"(chain c trains with sweeps.seeds[c]); sweeps.seeds has {list(sw.seeds)}")
    return list(enumerate(sw.seeds[:n]))


def point_seeds(cfg: StudyConfig, chain: int | None, chain_seed: int) -> list[int]:
    """SFT seeds trained in each round of a chain: its own seed, or every seed from v2's shared parent."""
    return list(cfg.sweeps.seeds) if chain is None else [chain_seed]


def all_seeds(cfg: StudyConfig) -> list[int]:
    """Every SFT seed with a rounds point (the base critic's rows use the same ones)."""
    return [s for c, cs in chain_seeds(cfg) for s in point_seeds(cfg, c, cs)]


# --- the training sets --------------------------------------------------------------------------------------
def tag(round_: int, data: RoundData, examples: Sequence[SFTExample]) -> list[SFTExample]:
    """Earlier-round examples with round-qualified ids (see the module docstring) and their round in ``meta``."""
    h = data.stage.hash
    return [dataclasses.replace(e, id=f"r{round_}@{h}/{e.id}", meta={**e.meta, "round": round_, "round_stage": h})
            for e in examples]


def replay_subset(examples: Sequence[SFTExample], share: float) -> list[SFTExample]:
    """The first ``share`` of a round's examples, with that round's correct:incorrect ratio (a prefix per class)."""
    if share <= 0 or not examples:
        return []
    n = round(len(examples) * share)
    return nested_subset(examples, n, sum(e.label_correct for e in examples) / len(examples))


def training_set(protocol: str, replay: float, history: Sequence[RoundData], current: RoundData) -> tuple[tuple, int]:
    """The SFT set of round ``len(history) + 1`` and how many of its examples come from earlier rounds.

    ``retrain`` pools every round's examples; ``continue`` mixes in ``replay`` of each earlier round's own
    examples (not the rounds it replayed itself, so no round counts twice). Earlier rounds come first."""
    if protocol == "retrain":
        earlier = [e for j, d in enumerate(history, 1) for e in tag(j, d, d.examples)]
    elif protocol == "continue":
        earlier = [e for j, d in enumerate(history, 1) for e in tag(j, d, replay_subset(d.examples, replay))]
    else:
        raise ValueError(f"unknown rounds protocol {protocol!r}")
    return tuple(earlier) + tuple(current.examples), len(earlier)


# --- the plan -------------------------------------------------------------------------------------------------
def plan(cfg: StudyConfig, data_for: Callable[[str | None], RoundData], train: Callable[[RoundPoint], str],
         progress: Callable[[str], None] = print) -> list[RoundPoint]:
    """Every SFT point of rounds 1..R, arm by arm and chain by chain.

    ``data_for(critic)`` gives a round's data from a critic (None = the profile's base; called once per
    critic); ``train(point)`` trains a point and returns its model directory, called only for the point
    whose model is the chain's next parent (rounds < R), since round k+1's data need it."""
    rp, n_rounds = cfg.sweeps.rounds_protocol, cfg.sweeps.rounds
    data: dict[str | None, RoundData] = {}
    out: list[RoundPoint] = []
    for protocol in rp.arms:
        for chain, chain_seed in chain_seeds(cfg):
            parent, history = None, []
            for r in range(1, n_rounds + 1):
                if parent not in data:
                    progress(f"round {r}: data from critic {parent or cfg.models.critic}")
                    data[parent] = data_for(parent)
                d = data[parent]
                ex, n_earlier = training_set(protocol, rp.replay, history, d)
                cont = protocol == "continue" and r > 1
                pts = [RoundPoint(arm_name(cfg, protocol), protocol, r, chain, s, parent, parent if cont else None,
                                  rp.lr_factor if cont else 1.0, d, ex, n_earlier, s == chain_seed and r < n_rounds)
                       for s in point_seeds(cfg, chain, chain_seed)]
                out += pts
                history.append(d)
                if r < n_rounds:
                    if not ex:
                        progress(f"round {r}: no training examples; the chain stops here")
                        break
                    parent = train(next(p for p in pts if p.parent_of_next))
    return out


def train_overrides(cfg: StudyConfig, p: RoundPoint) -> dict:
    """Profile overrides of a point's SFT on top of its data arm's config (whose ``models.critic`` is the
    round's critic): the base for ``retrain`` points, the scaled learning rate for continued ones. Empty
    for the v2 defaults, so their SFT stages keep their keys."""
    ov: dict = {}
    if p.init != p.critic:  # retrain from the base on a later round's data
        ov["models.critic"] = p.init or cfg.models.critic
    if p.lr_factor != 1.0:
        # 6 significant digits: 1e-3 x 0.1 is 1e-4 in the stage's config, not 0.00010000000000000002
        ov["training.learning_rate"] = float(f"{cfg.training.learning_rate * p.lr_factor:.6g}")
    return ov


def note(cfg: StudyConfig, p: RoundPoint) -> str:
    """The point's row note: protocol (when several), chain, and the earlier rounds' share of its set."""
    parts = [p.protocol] if len(cfg.sweeps.rounds_protocol.arms) > 1 else []
    if p.chain is not None:
        parts.append(f"chain {p.chain}")
    if p.n_earlier:
        how = "pooled" if p.protocol == "retrain" else "replayed"
        src = "round 1" if p.round == 2 else f"rounds 1..{p.round - 1}"
        parts.append(f"{p.n_earlier} of {len(p.examples)} examples {how} from {src}")
    return "; ".join(parts)
