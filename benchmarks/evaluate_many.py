"""Evaluation of many models on one set: each model alone against all of them on one draw of the set.

    python benchmarks/evaluate_many.py [--num 20000] [--column u5] [--data data]

Takes the 21 models of seed 0 in one noise column of the shipped cache (3 variants x depths 1-7), and
evaluates them on one set of ``--num`` sequences two ways, side by side in one run, compiled beforehand:
one :func:`lintx.metrics.evaluate` call per model (the set drawn and its oracle solved 21 times) and one
:func:`lintx.metrics.evaluate_many` call (drawn and solved once). Checks the numbers are equal and prints
a Markdown table of the times and their ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

from lintx import metrics
from lintx.checkpoint import load
from lintx.fit import checkpoints
from lintx.method import DEFAULT
from lintx.model import ModelConfig
from lintx.tasks import noise_from_label


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--num", type=int, default=20_000)
    ap.add_argument("--column", default="u5")
    ap.add_argument("--data", default="data")
    ap.add_argument("--profile", default=DEFAULT)
    args = ap.parse_args()
    noise = noise_from_label(args.column)
    paths = [p for v in ("gdpp", "diag", "full") for L in range(1, 8)
             for _, p in checkpoints(args.data, args.profile, ModelConfig(v, L), noise, [0], train_missing=False)]
    models = [load(p).model for p in paths]
    key = jax.random.key(99)
    metrics.evaluate_many(models, noise, key, min(args.num, metrics.EVAL_CHUNK))  # compile every structure
    t = time.perf_counter()
    alone = [metrics.evaluate(m, noise, key, args.num) for m in models]
    t_alone = time.perf_counter() - t
    t = time.perf_counter()
    together = metrics.evaluate_many(models, noise, key, args.num)
    t_together = time.perf_counter() - t
    same = all(np.array_equal(a[k], b[k]) for a, b in zip(alone, together) for k in a)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}; "
          f"{len(models)} models of column {args.column}, seed 0; one set of {args.num} sequences\n")
    print("| how | seconds | per model | ratio |\n|---|---|---|---|")
    print(f"| each model alone (`evaluate`) | {t_alone:.1f} | {t_alone / len(models):.2f} | 1.00 |")
    print(f"| all on one draw (`evaluate_many`) | {t_together:.1f} | {t_together / len(models):.2f} | {t_alone / t_together:.2f} |")
    print(f"\nsame numbers, bit for bit: {same}")


if __name__ == "__main__":
    main()
