"""Training cost of a trained cache, from the runner's log: seconds per model by variant and depth.

    python benchmarks/cost.py [--data data] [--profile fast]

Reads ``DATA/PROFILE/train_log.jsonl`` (one line per model the runner or a notebook trained: wall seconds
including compilation, retries and the held-out check) and keeps the last line per checkpoint that is
still in the cache. Prints a Markdown table of the median seconds per (variant, depth) over noise settings
and seeds, then the median model and the sum. The seconds are wall time of one process; when several
processes shared the cores (two workers on two cores, plus anything else running) they overstate the
CPU time, so the sum is an upper bound on CPU-seconds.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

NAME = re.compile(r"(?P<variant>gdpp|diag|full)-L(?P<L>\d+)-H\d+-(?P<noise>[^-]+)-s(?P<seed>\d+)-[0-9a-f]+\.npz")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data")
    ap.add_argument("--profile", default="fast")
    args = ap.parse_args()
    folder = Path(args.data, args.profile)
    last = {}
    for line in (folder / "train_log.jsonl").read_text().splitlines():
        r = json.loads(line)
        if "checkpoint" in r and (folder / r["checkpoint"]).exists():
            last[r["checkpoint"]] = r["seconds"]
    cells = defaultdict(list)
    for name, seconds in last.items():
        m = NAME.fullmatch(name)
        cells[(m["variant"], int(m["L"]))].append(seconds)
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


if __name__ == "__main__":
    main()
