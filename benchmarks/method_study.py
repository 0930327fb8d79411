"""Judge a profile's trained columns of Table 1 against the paper and a reference table, under the
evaluation protocol (``lintx.evaluation.Protocol``).

    python benchmarks/method_study.py --columns c13 c135 [--profile PROFILE] [--seeds 0 1 2 3 4] [--data data] \
        [--reference table1.csv]

Prints, per column and in total: model cells within tolerance (median of the five evaluation sets, the
seed chosen on the selection sets), the same for seed 0 alone, cells more than 1.5x above the reference's
median (a ``table1.csv`` written by :mod:`lintx.table1_text`, e.g. an earlier cache's, from git history), nesting breaks (a deeper model above a shallower one, FULL above DIAG, DIAG above GD++, by more
than 2% on the median), and the cost summed from ``DATA/PROFILE/train_log.jsonl`` for the models of these
columns. Only columns whose every model and seed is trained are judged; evaluations are cached in
``DATA/evals`` like Table 1's.
"""

from __future__ import annotations

import argparse
import csv

import numpy as np

from lintx.method import DEFAULT
from lintx.store import checkpoint_path, is_trained, logged_seconds, study_grid
from lintx.table1 import table1
from lintx.table1_text import nesting_breaks


def _complete(data, profile, column, seeds):
    grid = study_grid(columns=[column], deep_u5=column == "u5")
    return all(is_trained(checkpoint_path(data, profile, cfg, noise, s)) for cfg, noise in grid for s in seeds)


def _breaks(rows):
    cell = {(r["method"], r["layers"]): r["median"] for r in rows if r["layers"] is not None and "median" in r}
    return [f"{m} L{L} {cell[m, L]:.4g} > {f'L{j}' if i == m else i} {cell[i, j]:.4g}" for (m, L), (i, j) in nesting_breaks(cell)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=DEFAULT)
    ap.add_argument("--columns", nargs="+", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--data", default="data")
    ap.add_argument("--reference", help="a table1.csv to compare with (cells more than 1.5x above its median are listed)")
    args = ap.parse_args()
    reference = {}
    if args.reference:
        with open(args.reference) as f:
            reference = {(r["method"], int(r["layers"]), r["column"]): float(r["median"]) for r in csv.DictReader(f) if r["layers"] and r["median"]}
    seconds = logged_seconds(args.data, args.profile)
    print(f"# profile {args.profile!r} against the paper and {args.reference or 'no reference'}, seeds {args.seeds}\n")
    print("| column | cells within | seed 0 within | > 1.5x reference | nesting breaks | CPU s (models) | seed 0 CPU s | median model s |")
    print("|---|---|---|---|---|---|---|---|")
    total = np.zeros(3, int)
    for column in args.columns:
        if not _complete(args.data, args.profile, column, args.seeds):
            print(f"| {column} | not complete | | | | | | |")
            continue
        rows = [r for r in table1(args.data, args.profile, args.seeds, columns=[column]) if r["layers"] is not None]
        ref = lambda r: reference.get((r["method"], r["layers"], column))
        worse = [f"{r['method']} L{r['layers']} {r['median']:.4g} vs {ref(r):.4g}" for r in rows if ref(r) and r["median"] > 1.5 * ref(r)]
        names = [checkpoint_path(args.data, args.profile, cfg, noise, s).name
                 for cfg, noise in study_grid(columns=[column], deep_u5=column == "u5") for s in args.seeds]
        secs = [seconds[n] for n in names if n in seconds]
        seed0 = sum(seconds.get(n, 0.0) for n in names if "-s0-" in n)
        within, s0 = sum(r["within"] for r in rows), sum(r.get("seed0_within", False) for r in rows)
        total += (within, s0, len(rows))
        misses = ", ".join(f"{r['method']} L{r['layers']} {r['median']:.4g} (paper {r['paper']:.3g})" for r in rows if not r["within"])
        print(f"| {column} | {within}/{len(rows)} | {s0}/{len(rows)} | {'; '.join(worse) or 'none'} | {'; '.join(_breaks(rows)) or 'none'} | "
              f"{sum(secs):.0f} ({len(secs)}) | {seed0:.0f} | {np.median(secs):.1f} |")
        print(f"|  | outside: {misses or 'none'} | | | | | | |")
    print(f"\ntotal: {total[0]}/{total[2]} cells within tolerance, seed 0 alone {total[1]}/{total[2]}")


if __name__ == "__main__":
    main()
