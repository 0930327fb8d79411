"""Training cost of a trained cache, from the runner's log: seconds per model by variant and depth.

    python benchmarks/cost.py [--data data] [--profile PROFILE] [--top 12]

Reads ``DATA/PROFILE/train_log.jsonl`` (one line per model the runner or a notebook trained: wall seconds
including compilation, retries and the held-out check) and keeps the last line per checkpoint that is
still in the cache. Prints a Markdown table of the median seconds per (variant, depth) over noise settings
and seeds, then the median model and the sum, the hours per seed, and the costliest cells (variant, depth, noise
setting) with their share of the sum. The seconds are wall time of one process; when several
processes shared the cores (two workers on two cores, plus anything else running) they overstate the
CPU time, so the sum is an upper bound on CPU-seconds.
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections import defaultdict
from pathlib import Path

from lintx.method import DEFAULT
from lintx.store import logged_seconds

NAME = re.compile(r"(?P<variant>gdpp|diag|full)-L(?P<L>\d+)-H\d+-(?P<noise>[^-]+)-s(?P<seed>\d+)-[0-9a-f]+\.npz")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data")
    ap.add_argument("--profile", default=DEFAULT)
    ap.add_argument("--top", type=int, default=12, help="how many of the costliest cells to list")
    args = ap.parse_args()
    folder = Path(args.data, args.profile)
    last = logged_seconds(args.data, args.profile)
    cells, seeds, groups = defaultdict(list), defaultdict(float), defaultdict(list)
    for name, seconds in last.items():
        m = NAME.fullmatch(name)
        cells[(m["variant"], int(m["L"]))].append(seconds)
        seeds[int(m["seed"])] += seconds
        groups[(m["variant"], int(m["L"]), m["noise"])].append(seconds)
    depths = sorted({L for _, L in cells})
    print(f"Training seconds per model, {folder} ({len(last)} models logged): median (count)\n")
    print("| variant | " + " | ".join(f"L={L}" for L in depths) + " |")
    print("|---|" + "---|" * len(depths))
    for v in ("gdpp", "diag", "full"):
        row = [f"{statistics.median(cells[v, L]):.0f} ({len(cells[v, L])})" if cells[v, L] else "-" for L in depths]
        print(f"| {v} | " + " | ".join(row) + " |")
    all_seconds = list(last.values())
    print(f"\nmedian model {statistics.median(all_seconds):.1f} s; sum {sum(all_seconds) / 3600:.2f} h "
          f"over {len(all_seconds)} models (an upper bound on CPU time when processes shared cores)")
    print("\nHours per seed: " + ", ".join(f"seed {s} {h / 3600:.2f} h" for s, h in sorted(seeds.items())))
    top = sorted(groups.items(), key=lambda kv: -sum(kv[1]))[: args.top]
    print(f"\nThe {len(top)} costliest cells (variant, depth, noise), seconds summed over their seeds:\n")
    print("| cell | models | sum h | median s | share |")
    print("|---|---|---|---|---|")
    for (v, L, noise), secs in top:
        print(f"| {v} L={L} {noise} | {len(secs)} | {sum(secs) / 3600:.2f} | {statistics.median(secs):.0f} | {sum(secs) / sum(all_seconds):.1%} |")
    print(f"\ntogether {sum(sum(s) for _, s in top) / sum(all_seconds):.0%} of the sum")


if __name__ == "__main__":
    main()
