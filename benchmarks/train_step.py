"""Training throughput of lintx on this machine: steps/s and sequences/s per model.

    python benchmarks/train_step.py [--steps 20] [--seeds 4] [--batch 2048]

For each variant (FULL, DIAG, GD++) at L = 1, 4, 7 layers, batch 2048, times ``--steps`` compiled steps
(after a warm-up that compiles) for one seed, and for ``--seeds`` seeds trained together with vmap.
"model-steps/s" counts the steps of all vmapped models together. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax

from lintx.model import ModelConfig
from lintx.tasks import Uniform
from lintx.train import TrainConfig, _init_states, _train_chunk


def steps_per_second(cfg, noise, tc, seeds, steps):
    states, keys = _init_states(seeds, cfg, tc)
    states, _ = _train_chunk(states, keys, cfg, noise, tc, steps)  # compile and warm up
    jax.block_until_ready(states)
    t = time.perf_counter()
    states, losses = _train_chunk(states, keys, cfg, noise, tc, steps)
    jax.block_until_ready(losses)
    return steps / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2048)
    args = ap.parse_args()
    noise = Uniform(5.0)
    tc = TrainConfig(steps=args.steps, batch=args.batch)
    print(f"# lintx training throughput: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"jax {jax.__version__} on {jax.devices()[0].platform}, batch {args.batch}, sigma_max 5\n")
    print(f"| variant | L | 1 seed: steps/s | 1 seed: seq/s | {args.seeds} seeds vmapped: model-steps/s | {args.seeds} seeds vmapped: seq/s |")
    print("|---|---|---|---|---|---|")
    for variant in ("full", "diag", "gdpp"):
        for L in (1, 4, 7):
            cfg = ModelConfig(variant, L)
            one = steps_per_second(cfg, noise, tc, (0,), args.steps)
            # every seed advances one step per vmapped step: aggregate model-steps/s = steps/s x seeds
            many = steps_per_second(cfg, noise, tc, tuple(range(args.seeds)), args.steps) * args.seeds
            print(f"| {variant} | {L} | {one:.1f} | {one * args.batch:,.0f} | {many:.1f} | {many * args.batch:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
