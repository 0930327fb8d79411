"""The method against the paper's recipe: adjusted loss against CPU seconds, side by side in one run.

    python benchmarks/method.py [--cells diag-L7-u5,full-L7-c13,gdpp-L3-u5,diag-L5-u0] [--budget 600] \\
        [--profile PROFILE] [--num 20000]

For each cell, seed 0, in this process (``make bench`` pins it to one core and one XLA thread):

- **paper**: the paper's recipe (Adam 1e-4, batch 2048, raw parameters, constant rate; ``lintx.method``'s
  ``paper``) from a random start, for ``--budget`` CPU seconds, evaluated every ``--every`` seconds;
- **ours**: the method (``--profile``) trained from an empty folder, every model the cell's model is grown
  or embedded from included, its seconds summed over that chain.

Both are evaluated on ``--num`` sequences of development key 31001 (never a key of Table 1's protocol).
Prints one row per cell: the paper's value, each recipe's loss and seconds, and the seconds each needed to
come within 1.1x of the paper's value (``-`` where it did not), with their ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import jax
import numpy as np

from lintx import fit
from lintx.metrics import evaluate
from lintx.model import Model, ModelConfig
from lintx.method import DEFAULT, get_profile, recipe
from lintx.reference import paper_table1
from lintx.tasks import noise_from_label
from lintx.train import _init_states, _train_chunk, raw_params

CELLS = "diag-L7-u5,full-L7-c13,gdpp-L3-u5,diag-L5-u0"
DEV_KEY = 31001


def _loss(cfg, noise, params, num):
    with jax.enable_x64(False):
        return float(np.asarray(evaluate(Model(cfg, params), noise, jax.random.key(DEV_KEY), num)["adjusted_loss"])[-1])


def paper_curve(cfg, noise, budget: float, every: float, num: int):
    """``[(seconds, loss)]`` of the paper's recipe, trained for ``budget`` seconds (evaluation not counted)."""
    tc = recipe(get_profile("paper").budget, cfg, noise)
    states, keys = _init_states((0,), cfg, tc, noise)
    curve, spent, next_eval = [], 0.0, every
    while spent < budget:
        t = time.perf_counter()
        states, _ = _train_chunk(states, keys, cfg, noise, tc, 100)
        jax.block_until_ready(states)
        spent += time.perf_counter() - t
        if spent >= next_eval or spent >= budget:
            params = jax.tree_util.tree_map(lambda x: x[0], jax.vmap(lambda v: raw_params(cfg, noise, tc, v))(states[0]))
            curve.append((spent, _loss(cfg, noise, params, num)))
            next_eval += every
    return curve


def ours(cfg, noise, profile: str, num: int):
    """``(seconds, loss)`` of the method: the cell's model trained from an empty folder, its chain included."""
    with tempfile.TemporaryDirectory() as data:
        records = []
        ck = fit.get_or_train(data, profile, cfg, noise, 0, log=records.append)
        return sum(r["seconds"] for r in records), _loss(cfg, noise, ck.model.params, num)


def _reach(points, target):
    return next((s for s, loss in points if loss <= target), None)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default=CELLS)
    ap.add_argument("--budget", type=float, default=600.0, help="CPU seconds of the paper's recipe per cell")
    ap.add_argument("--every", type=float, default=30.0)
    ap.add_argument("--profile", default=DEFAULT)
    ap.add_argument("--num", type=int, default=20_000)
    args = ap.parse_args()
    paper = paper_table1()
    print(f"# method against the paper's recipe: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}, "
          f"paper's recipe {args.budget:.0f} s a cell, ours = profile {args.profile!r}, {args.num:,} sequences of key {DEV_KEY}\n")
    print("| cell | paper's value | paper's recipe: loss at budget | s to 1.1x | ours: loss | ours: s (chain) | s to 1.1x | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for cell in args.cells.split(","):
        variant, depth, label = cell.split("-")
        cfg, noise = ModelConfig(variant, int(depth[1:])), noise_from_label(label)
        ref = paper[(variant.upper(), cfg.layers)][noise.label]
        curve = paper_curve(cfg, noise, args.budget, args.every, args.num)
        secs, loss = ours(cfg, noise, args.profile, args.num)
        t_paper, t_ours = _reach(curve, 1.1 * ref), _reach([(secs, loss)], 1.1 * ref)
        ratio = f"{t_paper / t_ours:.1f}x" if t_paper and t_ours else (f"> {args.budget / t_ours:.1f}x" if t_ours else "-")
        fmt = lambda x: "-" if x is None else f"{x:.0f}"
        print(f"| {cell} | {ref:.3g} | {curve[-1][1]:.4g} | {fmt(t_paper)} | {loss:.4g} | {secs:.0f} | {fmt(t_ours)} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
