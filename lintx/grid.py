"""A study's grid as the runner walks it (``python -m lintx train``): its models in training order, their
split into disjoint shards, and the ETA: each model's cost, or its seconds where the training log measured
it at another seed. It trains nothing and reads no files.

A model's warm starts (the shallower model it is grown from, the simpler variant it embeds) share its noise
setting and seed, so a shard that holds whole (noise setting, seed) pairs holds every model's lineage: no
shard waits on another. A model's seeds share its compiled step within a process in any order.
"""

from __future__ import annotations

from typing import Optional, Sequence

from lintx.method import Profile, name, recipe
from lintx.model import ModelConfig
from lintx.store import study_grid
from lintx.tasks import Noise

Job = tuple[ModelConfig, Noise, int]  # a model, its noise setting, its seed

_ORDER = {"gdpp": 0, "diag": 1, "full": 2}  # a variant after the one it contains


def jobs(prof: Profile, seeds: Optional[Sequence[int]] = None, **grid) -> list[Job]:
    """Every model of :func:`lintx.store.study_grid` (``grid``: its arguments) at ``seeds`` (default: the
    profile's ``0 .. seeds - 1``), in training order: per noise setting, shallow and simple first, so a warm
    start's parent is trained before its children; the seeds of a model one after the other, so they share
    its compiled training step."""
    seeds = list(range(prof.seeds)) if seeds is None else list(seeds)
    out = [(cfg, noise, s) for s in seeds for cfg, noise in study_grid(**grid)]
    return sorted(out, key=lambda j: (j[1].label, j[0].layers, _ORDER[j[0].variant], j[2]))


def shard(jobs: list[Job], i: int, k: int) -> list[Job]:
    """The ``i``-th of ``k`` disjoint parts of ``jobs`` (``i`` from 0), in their order. The unit is a noise
    setting at one seed (it holds every lineage); each unit, largest first, goes to the part with the fewest
    jobs so far (the first of equals), so the parts balance when one setting dominates (``--columns u6``
    brings in only ``u5``'s depth-8 models beside it). Their union is ``jobs``."""
    size: dict = {}
    for _, noise, seed in jobs:
        size[noise.label, seed] = size.get((noise.label, seed), 0) + 1
    load, part = [0] * k, {}
    for unit in sorted(size, key=lambda u: -size[u]):  # stable: units of one size in the jobs' order
        part[unit] = load.index(min(load))
        load[part[unit]] += size[unit]
    return [j for j in jobs if part[j[1].label, j[2]] == i]


def cost(prof: Profile, cfg: ModelConfig, noise: Noise) -> int:
    """A model's cost for the ETA, in sequence-layer steps: the most steps of a candidate times its batch,
    its depth and its candidates (a wsd budget's ``steps`` is its most held steps: an upper bound)."""
    from lintx.fit import num_candidates  # fit imports the store, which this module does too

    tc = recipe(prof.budget, cfg, noise)
    return tc.steps * tc.batch * cfg.layers * num_candidates(prof, cfg, noise)


def measured_seconds(prof: Profile, jobs: Sequence[Job], logged: dict[str, float]) -> list[Optional[float]]:
    """Each job's seconds as the training log measured its model (the same model and noise setting at the
    profile's other seeds, by checkpoint name; their mean), or None where none is logged. ``logged``:
    :func:`lintx.store.logged_seconds`. A length decided by the training's own looks (the wsd schedule)
    differs by orders of magnitude between models that :func:`cost` counts alike; another seed's time does not."""
    memo: dict = {}
    for cfg, noise, _ in jobs:
        if (cfg, noise) not in memo:
            secs = [logged[nm] for t in range(prof.seeds) if (nm := name(prof, cfg, noise, t)) in logged]
            memo[cfg, noise] = sum(secs) / len(secs) if secs else None
    return [memo[cfg, noise] for cfg, noise, _ in jobs]


def eta(costs: Sequence[float], measured: Sequence[Optional[float]], seconds: Sequence[float]) -> float:
    """Seconds left for the jobs after the ``len(seconds)`` done (which took ``seconds``): a job with a
    ``measured`` time takes it, scaled by how the done measured jobs compared with theirs (a slower or busier
    machine); one without takes its ``costs`` at the rate of the done jobs without (of all done where none)."""
    done = len(seconds)
    pairs = [(m, t) for m, t in zip(measured[:done], seconds) if m is not None]
    expected = sum(m for m, _ in pairs)
    scale = sum(t for _, t in pairs) / expected if expected > 0 else 1.0
    plain = [(c, t) for c, m, t in zip(costs[:done], measured[:done], seconds) if m is None] or list(zip(costs[:done], seconds))
    rate = sum(t for _, t in plain) / max(sum(c for c, _ in plain), 1e-12)
    return sum(scale * m if m is not None else rate * c for c, m in zip(costs[done:], measured[done:]))
