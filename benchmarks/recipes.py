"""Training recipes against wall time on the hard cells of Table 1 (issue 3: find ``fast`` by measurement).

    python benchmarks/recipes.py [--cells diag-L4-u5,full-L7-c13] [--recipes fast,b512x4] [--num 100000]

Each (cell, recipe) trains seed 0 in this process (pin it to one core and single-threaded XLA for honest
numbers, as ``make bench`` does), then evaluates the adjusted loss on ``--num`` sequences of the shared
evaluation key 2024, the key Table 1 uses. Prints one Markdown row per run as it finishes; the table is
recorded in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

import jax

from lintx.metrics import evaluate
from lintx.model import Model, ModelConfig
from lintx.profiles import get_profile
from lintx.reference import paper_table1
from lintx.store import precision
from lintx.tasks import noise_from_label
from lintx.train import TrainConfig, grow, train, unstack

HARD_CELLS = ("diag-L4-u5", "full-L4-u5", "diag-L7-u5", "full-L7-u5", "full-L7-c13", "diag-L6-u0")


def _lr(L):
    return 3e-2 if L <= 4 else 1e-2


def _scaled(cfg, noise, steps):
    tc = get_profile("fast").recipe(cfg, noise)
    return dataclasses.replace(tc, steps=tc.steps * steps)


# candidate recipes: name -> (cfg, noise) -> TrainConfig
RECIPES = {
    "fast": lambda cfg, noise: get_profile("fast").recipe(cfg, noise),
    "v1:b2048x1000L": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=2048, lr=_lr(cfg.layers)),
    "b512x1000L": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=_lr(cfg.layers)),
    "b512x2000L": lambda cfg, noise: TrainConfig(steps=2000 * min(cfg.layers, 5), batch=512, lr=_lr(cfg.layers)),
    "b512x4000L": lambda cfg, noise: TrainConfig(steps=4000 * min(cfg.layers, 5), batch=512, lr=_lr(cfg.layers)),
    "b256x4000L": lambda cfg, noise: TrainConfig(steps=4000 * min(cfg.layers, 5), batch=256, lr=_lr(cfg.layers)),
    "b512x1000L-lr3e-2": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=3e-2),
    "b512x2000L-lr3e-2": lambda cfg, noise: TrainConfig(steps=2000 * min(cfg.layers, 5), batch=512, lr=3e-2),
    "b512x1000L-lr2e-2-b2.99": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=2e-2, b2=0.99),
    "b512x1000L-lr1e-2-b2.99": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=1e-2, b2=0.99),
    "b512x1000L-lr5e-3-b2.99": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=5e-3, b2=0.99),
    "b512x1000L-lr3e-3-b2.99": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=3e-3, b2=0.99),
    "b512x1000L-lr2e-2-b2.99-init.03": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=2e-2, b2=0.99, init_std=0.03),
    "b512x1000L-lr1e-2-b2.99-init.03": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=1e-2, b2=0.99, init_std=0.03),
    "b1024x1000L-lr1e-2-b2.99": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=1024, lr=1e-2, b2=0.99),
    "b512x1000L-lr2e-2-b2.99-init.01-wu.3": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=2e-2, b2=0.99, init_std=0.01, warmup=0.3),
    "b512x1000L-lr1e-2-b2.99-init.01-wu.3": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=1e-2, b2=0.99, init_std=0.01, warmup=0.3),
    "b2048x1000L-lr1e-2-b2.99-init.01-wu.3": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=2048, lr=1e-2, b2=0.99, init_std=0.01, warmup=0.3),
    "b512x3000L-lr1e-2-b2.99-init.01-wu.3": lambda cfg, noise: TrainConfig(steps=3000 * min(cfg.layers, 5), batch=512, lr=1e-2, b2=0.99, init_std=0.01, warmup=0.3),
    "b512x1000L-lr5e-3-b2.99-init.01-wu.3": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=5e-3, b2=0.99, init_std=0.01, warmup=0.3),
    # the fast ladder's first retry of the recipe above (lr / 3)
    "b512x1000L-lr3.3e-3-b2.99-init.01-wu.3": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=1e-2 / 3, b2=0.99, init_std=0.01, warmup=0.3),
    "b512x1000L-init.01": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=_lr(cfg.layers), init_std=0.01),
    "b1024x1000L": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=1024, lr=_lr(cfg.layers)),
    "b512x1000L-lr1e-2": lambda cfg, noise: TrainConfig(steps=1000 * min(cfg.layers, 5), batch=512, lr=1e-2),
    "b512x2000L-lr2e-2-b2.99": lambda cfg, noise: TrainConfig(steps=2000 * min(cfg.layers, 5), batch=512, lr=2e-2, b2=0.99),
    # the fast recipe in float32 (it trains FULL with 6+ layers in float64)
    "fast-float32": lambda cfg, noise: dataclasses.replace(get_profile("fast").recipe(cfg, noise), dtype="float32"),
    # the fast recipe with 2x or 4x the steps (is FULL on categorical noise step-limited?)
    "fast-2xsteps": lambda cfg, noise: _scaled(cfg, noise, steps=2),
    "fast-4xsteps": lambda cfg, noise: _scaled(cfg, noise, steps=4),
    # and 16x (FULL 7 layers on {1,3,5}). These multiply fast's current recipe: where fast itself
    # trains 16x the steps (FULL 5-7 layers on {1,3}, 7 layers on {1,3,5}) they are 32-256x.
    "fast-16xsteps": lambda cfg, noise: _scaled(cfg, noise, steps=16),
    # and at lr/3, the rule fast adopted for FULL 7 layers on {1,3,5} (measured at 5-6 layers there)
    "fast-16xsteps-lr3": lambda cfg, noise: dataclasses.replace(_scaled(cfg, noise, steps=16), lr=get_profile("fast").recipe(cfg, noise).lr / 3),
    # the fast recipe without gradient clipping (random starts only: not FULL with 5+ layers)
    "fast-noclip": lambda cfg, noise: dataclasses.replace(get_profile("fast").recipe(cfg, noise), clip=0.0),
}


# warm-start chains: name -> (first depth, recipe). The first depth is trained from scratch, each deeper
# model grown from the previous one (lintx.train.grow); the recipe gets every depth of the chain.
GROW = {
    "grow-b512x2000-lr3e-2": (1, lambda cfg, noise: TrainConfig(steps=2000, batch=512, lr=3e-2)),
    "grow-b512x1000-lr3e-2": (1, lambda cfg, noise: TrainConfig(steps=1000, batch=512, lr=3e-2)),
    "grow-b512x2000-lr1e-2": (1, lambda cfg, noise: TrainConfig(steps=2000, batch=512, lr=1e-2)),
    # the 4-layer model trained by ``fast``, then each deeper one grown from it
    "grow4-b512x2000-lr3e-3-b2.99-init.01": (4, lambda cfg, noise: get_profile("fast").recipe(cfg, noise) if cfg.layers <= 4
                                                 else TrainConfig(steps=2000, batch=512, lr=3e-3, b2=0.99, init_std=0.01)),
    "grow4-b512x2000-lr3e-3-b2.99": (4, lambda cfg, noise: get_profile("fast").recipe(cfg, noise) if cfg.layers <= 4
                                         else TrainConfig(steps=2000, batch=512, lr=3e-3, b2=0.99)),
    "grow4-b512x2000-lr1e-2-b2.99": (4, lambda cfg, noise: get_profile("fast").recipe(cfg, noise) if cfg.layers <= 4
                                         else TrainConfig(steps=2000, batch=512, lr=1e-2, b2=0.99)),
}


def parse_cell(cell: str):
    variant, depth, label = cell.split("-")
    return ModelConfig(variant, int(depth[1:])), noise_from_label(label)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default=",".join(HARD_CELLS))
    ap.add_argument("--recipes", default="fast")
    ap.add_argument("--num", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    paper = paper_table1()
    print(f"# recipes: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__} on {jax.devices()[0].platform}, "
          f"eval {args.num:,} sequences, seed {args.seed}\n")
    print("| cell | recipe | steps | batch | lr | train s (chain: cumulative) | adjusted loss | paper | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cell in args.cells.split(","):
        cfg, noise = parse_cell(cell)
        for name in args.recipes.split(","):
            first, recipe = GROW[name] if name in GROW else (cfg.layers, RECIPES[name])
            chain, params, total = range(min(first, cfg.layers), cfg.layers + 1), None, 0.0
            for L in chain:
                c = ModelConfig(cfg.variant, L)
                tc = recipe(c, noise)
                start = time.perf_counter()
                init = None if params is None else [grow(c, noise, params, args.seed, tc)]
                with precision(tc):  # 64-bit JAX for a float64 recipe, as the runner trains it
                    result = train(c, noise, tc, seeds=(args.seed,), init=init)
                    jax.block_until_ready(result.params)
                total += time.perf_counter() - start
                params = unstack(result, 0)
                with jax.enable_x64(False):  # the shared set: 64-bit JAX would draw other sigmas (lintx.evaluation.cached)
                    r = evaluate(Model(c, params), noise, jax.random.key(2024), args.num)
                flag = " (diverged)" if result.diverged[0] else ""
                ref = paper.get((c.variant.upper(), L), {}).get(noise.label)  # none for 8 layers
                loss = float(r["adjusted_loss"][-1])
                print(f"| {c.variant}-L{L}-{noise.label} | {name} | {tc.steps} | {tc.batch} | {tc.lr:g} | {total:.0f} | "
                      f"{loss:.4g}{flag} | {'-' if ref is None else f'{ref:.3g}'} | {'-' if ref is None else f'{loss / ref:.2f}'} |", flush=True)


if __name__ == "__main__":
    main()
