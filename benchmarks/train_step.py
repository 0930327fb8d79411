"""Training throughput of lintx on this machine: steps/s and sequences/s per model.

    python benchmarks/train_step.py [--steps 20] [--seeds 4] [--batch 2048]

For each variant (FULL, DIAG, GD++) at L = 1, 4, 7 layers, batch 2048, times ``--steps`` compiled steps
(after a warm-up that compiles) for one seed, and for ``--seeds`` seeds trained together with vmap.
"model-steps/s" counts the steps of all vmapped models together. Prints a Markdown table.

Beside it, measured in the same run: the machine's rate for batched ``(d+1) x (d+1)`` matrix products (the
building block of every layer), and each step's achieved rate as a fraction of it, from an analytic count
of a step's useful work (:func:`step_flops`).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp

from lintx.model import ModelConfig
from lintx.tasks import Uniform
from lintx.recipe import TrainConfig
from lintx.train import _init_states, _train_chunk


def steps_per_second(cfg, noise, tc, seeds, steps):
    states, keys = _init_states(seeds, cfg, tc)
    states, _ = _train_chunk(states, keys, cfg, noise, tc, steps)  # compile and warm up
    jax.block_until_ready(states)
    t = time.perf_counter()
    states, losses = _train_chunk(states, keys, cfg, noise, tc, steps)
    jax.block_until_ready(losses)
    return steps / (time.perf_counter() - t)


def step_flops(cfg: ModelConfig, batch: int) -> float:
    """Useful floating-point work of one training step, counted as a FULL layer does it: the context's
    moment matrix (``2 (n+1) (d+1)^2`` per sequence), then per layer four ``(d+1) x (d+1)`` products
    (``T = I + P C Q`` and ``T C T^T``, ``2 (d+1)^3`` each) and the query's update, times 3 for the
    backward pass. DIAG and GD++ layers need less; for them it is the work a FULL layer of that depth does."""
    k = cfg.d + 1
    forward = 2 * (cfg.n + 1) * k * k + cfg.layers * (4 * 2 * k**3 + 2 * k * k)
    return 3.0 * batch * forward


def matmul_rate(k: int = 11, batch: int = 2048, repeats: int = 500) -> float:
    """FLOP/s of batched ``k x k`` float32 matrix products on this machine (jit, one compiled program), on
    a batch that stays in cache, as a training step's does (65,536 matrices at a time run at half the rate)."""
    a = jax.random.normal(jax.random.key(0), (batch, k, k))
    f = jax.jit(lambda a: jax.lax.fori_loop(0, repeats, lambda i, x: jnp.einsum("bij,bjk->bik", x, a) * 0.5, a))
    jax.block_until_ready(f(a))
    t = time.perf_counter()
    jax.block_until_ready(f(a))
    return repeats * batch * 2 * k**3 / (time.perf_counter() - t)


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
    peak = matmul_rate()
    print(f"batched 11x11 float32 matrix products: {peak / 1e9:.1f} GFLOP/s (the reference for 'of matmul' below)\n")
    print(f"| variant | L | 1 seed: steps/s | 1 seed: seq/s | 1 seed: GFLOP/s, of matmul | {args.seeds} seeds vmapped: model-steps/s | {args.seeds} seeds vmapped: seq/s |")
    print("|---|---|---|---|---|---|---|")
    for variant in ("full", "diag", "gdpp"):
        for L in (1, 4, 7):
            cfg = ModelConfig(variant, L)
            one = steps_per_second(cfg, noise, tc, (0,), args.steps)
            # every seed advances one step per vmapped step: aggregate model-steps/s = steps/s x seeds
            many = steps_per_second(cfg, noise, tc, tuple(range(args.seeds)), args.steps) * args.seeds
            rate = one * step_flops(cfg, args.batch)
            print(f"| {variant} | {L} | {one:.1f} | {one * args.batch:,.0f} | {rate / 1e9:.2f}, {rate / peak:.0%} | {many:.1f} | "
                  f"{many * args.batch:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
