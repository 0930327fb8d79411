"""Noiseless GD++ (Table 1, ``sigma_max = 0``): Adam's shipped models against the float64 spectral fit.

    python benchmarks/noiseless.py [--depths 2,3,4,5,6,7] [--seed 0]

For each depth, prints the shipped checkpoint (``lintx.method.DEFAULT``) of GD++ at ``u0`` (best seed) and a model fitted
by :func:`lintx.spectral.fit`, each measured two ways: the exact spectral loss on an importance-sampled
set of 600,000 Wishart matrices that neither saw (:func:`lintx.spectral.noiseless_loss`), and Table 1's
own Monte Carlo evaluation (100,000 sequences, evaluation seed 2024, float32). Cost: about 25 minutes on
one core for depths up to 7 (the fit grows through every depth once). Result: ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from lintx.checkpoint import load
from lintx.metrics import evaluate
from lintx.model import Model, ModelConfig, w_matrix
from lintx.method import DEFAULT, get_profile
from lintx.reference import paper_table1
from lintx.evaluation import evaluate_checkpoint
from lintx.spectral import SpectralConfig, fit, noiseless_loss, wishart_sample
from lintx.store import checkpoint_path
from lintx.tasks import noise_from_label

U0 = noise_from_label("u0")


def table_loss(cfg: ModelConfig, params) -> float:
    """Loss after the last layer on Table 1's evaluation set (for a model not saved as a checkpoint)."""
    return float(np.asarray(evaluate(Model(cfg, params), U0, jax.random.key(2024), 100_000)["loss"])[-1])


def spectral_loss(cfg: ModelConfig, params, test) -> float:
    w = w_matrix(cfg, params)[:, :, 0]  # (w_xx, w_yx)
    with jax.enable_x64(True):
        return float(noiseless_loss(jnp.asarray(w, jnp.float64), *test))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", default="2,3,4,5,6,7")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default="data")
    args = ap.parse_args()
    sc = SpectralConfig()
    with jax.enable_x64(True):
        test = wishart_sample(jax.random.key(10_000 + args.seed), sc.per_scale, sc.scales)
    print("| layers | paper | shipped Adam: seed, spectral, Table 1 | spectral fit (seed %d): own sample, spectral, Table 1 | fit s |" % args.seed)
    print("|---|---|---|---|---|")
    for L in (int(x) for x in args.depths.split(",")):
        cfg = ModelConfig("gdpp", L)
        shipped = []
        for s in range(get_profile(DEFAULT).seeds):
            path = checkpoint_path(args.data, DEFAULT, cfg, U0, s)
            if path.exists():
                table = evaluate_checkpoint(args.data, path, 2024, 100_000)["loss"][-1]  # Table 1's own (cached) entry
                shipped.append((table, s, spectral_loss(cfg, load(path).model.params, test)))
        t = time.perf_counter()
        r = fit(cfg, U0, sc, args.seed)
        seconds = time.perf_counter() - t
        params = {k: v[0] for k, v in r.params.items()}
        best = min(shipped) if shipped else None
        adam = f"s{best[1]}, {best[2]:.3g}, {best[0]:.3g}" if best else "-"
        print(f"| {L} | {paper_table1()[('GDPP', L)]['u0']:.3g} | {adam} | {r.final_loss[0]:.3g}, {spectral_loss(cfg, params, test):.3g}, "
              f"{table_loss(cfg, params):.3g} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
