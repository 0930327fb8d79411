"""What the beyond-the-paper grids (``make beyond``, :mod:`lintx.beyond`) would cost, before they train.

    python benchmarks/beyond_cost.py [--data data] [--profile PROFILE] [--steps 20]

For each architecture of the grids (DIAG and FULL with 2 and 4 heads; GD++, DIAG and FULL at each other
``(d, n)``), times a training step at the profile's batch for that architecture (:func:`lintx.method.batch`)
at 4 layers, beside the same variant with one head at ``d = 10, n = 20`` in the same run, so the ratio is
free of the machine's load. A grid's estimate is the profile's logged seconds of the matching single-head
models of the study (``DATA/PROFILE/train_log.jsonl``, seed 0, the same noise columns and depths) times that
ratio, variant by variant: the steps a model takes under the profile's rule are assumed the same. Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

from lintx import beyond, store
from lintx.method import DEFAULT, batch, get_profile, recipe
from lintx.model import ModelConfig
from lintx.tasks import noise_from_label
from train_step import steps_per_second  # benchmarks/train_step.py, beside this script

NAME = re.compile(r"(?P<variant>gdpp|diag|full)-L(?P<L>\d+)-H1-(?P<noise>[^-]+)-s0-[0-9a-f]+\.npz")


def step_seconds(cfg: ModelConfig, prof, steps: int) -> float:
    """Seconds of one training step of one seed at the profile's recipe for ``cfg`` (``sigma_max = 5``)."""
    noise = noise_from_label("u5")
    return 1.0 / steps_per_second(cfg, noise, recipe(prof.budget, cfg, noise), [0], steps)


def logged_seconds(data: str, profile: str) -> dict:
    """Seconds of seed 0's single-head models at d = 10, n = 20, by (variant, layers, noise label)."""
    out = {}
    for checkpoint, seconds in store.logged_seconds(data, profile).items():
        m = NAME.fullmatch(checkpoint)
        if m:
            out[(m["variant"], int(m["L"]), m["noise"])] = seconds
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data")
    ap.add_argument("--profile", default=DEFAULT)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    prof = get_profile(args.profile)
    logged = logged_seconds(args.data, prof.name)
    grids = [(f"heads {H}", v, H, 10, 20, beyond.HEAD_COLUMNS, range(1, 8)) for H in beyond.HEADS[1:] for v in ("gdpp", *beyond.HEAD_VARIANTS)]
    grids += [(f"shape {d}x{n}", v, 1, d, n, beyond.SHAPE_COLUMNS, range(1, 6)) for d, n in beyond.SHAPES[1:] for v in beyond.SHAPE_VARIANTS]
    base = {v: step_seconds(ModelConfig(v, 4), prof, args.steps) for v in ("gdpp", "diag", "full")}
    hours = defaultdict(float)
    print(f"{prof.name} profile, a step at 4 layers against the same variant with one head at d = 10, n = 20 ({args.steps} steps each)\n")
    print("| grid | variant | batch | ms a step | ratio | seed 0 at d=10, n=20: s | estimate, seed 0: s |")
    print("|---|---|---|---|---|---|---|")
    for name, v, H, d, n, columns, depths in grids:
        cfg = ModelConfig(v, 4, heads=H, d=d, n=n)
        ratio = step_seconds(cfg, prof, args.steps) / base[v]
        single = sum(logged.get((v, L, c), float("nan")) for c in columns for L in depths)
        hours[name] += ratio * single / 3600
        print(f"| {name} | {v} | {batch(prof.budget, cfg)} | {1e3 * ratio * base[v]:.1f} | {ratio:.2f} | {single:.0f} | {ratio * single:.0f} |")
    print("\n| grid | estimate, seed 0: CPU-hours |\n|---|---|")
    for name, h in hours.items():
        print(f"| {name} | {h:.2f} |")
    print(f"| all | {sum(hours.values()):.2f} |")


if __name__ == "__main__":
    main()
