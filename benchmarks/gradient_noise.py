"""Signal and noise of the training gradient at shipped checkpoints (issue 3: is a cell short of the paper
because its steps see mostly noise?).

    python benchmarks/gradient_noise.py [--cells full-L5-c13,full-L7-c13] [--batches 400] [--seed best]

For each cell it loads a shipped ``fast`` checkpoint (by default the seed Table 1 reports, chosen on the
selection sets, :func:`lintx.report.best_checkpoint`; or ``--seed N``), takes the training objective's gradient (Eq. 7, over the
normalised parameters Adam updates, at the recipe's batch) on ``--batches`` fresh batches, and prints:

- the median norm of one batch's gradient,
- the norm of the true (expected) gradient, estimated without bias as ``|mean g|^2 - var / K``,
- their ratio, the signal-to-noise ratio of one step, and the batch at which it would be 1.

At a minimum the true gradient is 0 and every step is noise; a ratio far below 1 with a clearly nonzero
true gradient says the model is still descending but each step sees mostly noise, so it needs many more
sequences (steps or batch), not a different learning rate. Table in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from lintx.checkpoint import load
from lintx.model import ModelConfig
from lintx.profiles import get_profile
from lintx.evaluation import Protocol
from lintx.report import best_checkpoint
from lintx.store import checkpoint_path, precision
from lintx.tasks import noise_from_label
from lintx.train import param_scales, train_loss

CELLS = ("full-L5-u5", "full-L5-c13", "full-L6-c13", "full-L7-c13", "full-L7-c135")
ROOT = Path(__file__).resolve().parent.parent


def measure(cell: str, batches: int, seed: int | None) -> dict:
    variant, depth, label = cell.split("-")
    cfg, noise = ModelConfig(variant, int(depth[1:])), noise_from_label(label)
    prof = get_profile("fast")
    if seed is None:  # Table 1's pick, from the cached evaluations; trains nothing
        path = best_checkpoint(ROOT / "data", "fast", cfg, noise, range(prof.seeds), Protocol(), train_missing=False)
    else:
        path = checkpoint_path(ROOT / "data", "fast", cfg, noise, seed)
    ckpt = load(path)
    seed, tc = ckpt.meta["seed"], prof.recipe(cfg, noise)
    if not tc.normalise:  # every fast recipe trains normalised parameters; this reads the gradient Adam sees there
        raise ValueError(f"{cell}: the recipe trains raw parameters, not normalised ones")
    s = param_scales(cfg, noise)  # Adam's parameters v of raw = s * v, as lintx.refine takes them
    with precision(tc):
        v = {k: jnp.asarray(np.asarray(x) / s[k], tc.dtype) for k, x in ckpt.model.params.items()}
        grad = jax.jit(jax.grad(lambda v, k: train_loss(v, k, cfg, noise, tc)))
        flat = lambda g: np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree_util.tree_leaves(g)])
        g = np.stack([flat(grad(v, jax.random.key(1_000_000 + i))) for i in range(batches)])
    mean = g.mean(axis=0)
    var = np.sum(g.var(axis=0, ddof=1))  # total variance of one batch's gradient
    signal2 = float(mean @ mean - var / batches)
    signal = float(np.sqrt(max(signal2, 0.0)))
    snr = signal / float(np.sqrt(var))
    return {"cell": cell, "seed": seed, "batch": tc.batch, "one": float(np.median(np.linalg.norm(g, axis=1))),
            "signal": signal, "snr": snr, "batch_snr1": tc.batch / snr**2 if snr > 0 else float("inf")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--seed", type=int, default=None, help="the seed to load (default: each cell's best on Table 1's set)")
    args = ap.parse_args()
    print(f"# gradient noise: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}, {args.batches} batches a cell\n")
    print("| cell | seed | batch | one batch's gradient (median norm) | true gradient (norm) | signal / noise | batch for signal = noise |")
    print("|---|---|---|---|---|---|---|")
    for cell in args.cells.split(","):
        r = measure(cell, args.batches, args.seed)
        print(f"| {r['cell']} | {r['seed']} | {r['batch']} | {r['one']:.3g} | {r['signal']:.3g} | {r['snr']:.3g} | {r['batch_snr1']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
