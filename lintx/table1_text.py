"""``figures/table1.csv`` and ``figures/table1.md`` from the rows of :func:`lintx.table1.table1`.

Every number in the text is computed from the rows: the headline counts, the cells outside tolerance with
their spread over the evaluation sets, seed 0 alone, the single set of the paper's one-draw protocol,
where we differ from the paper, and the heavy tails.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lintx.evaluation import Protocol
from lintx.table1 import TAIL_SHARE, tolerance

FIELDS = ["method", "layers", "column", "seeds_found", "diverged", "best_seed", "median", "min", "max", "single", "paper",
          "ratio", "within", "single_within", "seed0_median", "seed0_min", "seed0_max", "seed0_single", "seed0_within",
          "worst10_share", "max_sequence", "expected", "expected_stderr", "tail_dominated"]
DIFFERENCE = 0.10  # a median this far from the paper's value (relative) is listed, in tolerance or not
SEED_SPREAD = 2.0  # a cell whose mean over its seeds' medians is this many times the chosen seed's is listed
ORDER_MARGIN = 0.05  # the paper's FULL counts as below its DIAG when at least this much (relative) lower


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else ("" if v is None else str(v))


def _cell(r: dict) -> str:
    return f"{r['method']} {r['layers']} `{r['column']}`" if r["layers"] else f"{r['method']} `{r['column']}`"


def _spread(r: dict, prefix: str = "") -> str:
    return f"{r[prefix + 'median']:.3g} [{r[prefix + 'min']:.3g}, {r[prefix + 'max']:.3g}]"


def write_table1(rows: list[dict], out_dir, profile: str, protocol: Protocol) -> tuple[Path, Path]:
    """``table1.csv`` (every row, :data:`FIELDS`) and ``table1.md`` (median [min, max] / paper per cell)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "table1.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k)) for k in FIELDS})
    (out / "table1.md").write_text("\n".join(_markdown(rows, profile, protocol)) + "\n")
    return out / "table1.csv", out / "table1.md"


def counts(rows: list[dict]) -> dict:
    """The headline numbers: cells within tolerance by the median (best seed, and seed 0 alone) and by the
    single set, out of the model cells found."""
    found = [r for r in rows if r["layers"] is not None and r["seeds_found"]]
    first = [r for r in found if "seed0_median" in r]
    return {"cells": len(found), "within": sum(r["within"] for r in found), "single_within": sum(r["single_within"] for r in found),
            "seed0_cells": len(first), "seed0_within": sum(r["seed0_within"] for r in first),
            "missing": sum(1 for r in rows if r["layers"] is not None and not r["seeds_found"])}


def _markdown(rows: list[dict], profile: str, p: Protocol) -> list[str]:
    c = counts(rows)
    columns = list(dict.fromkeys(r["column"] for r in rows))
    keys = list(dict.fromkeys((r["method"], r["layers"]) for r in rows))
    cell = {(r["method"], r["layers"], r["column"]): r for r in rows}
    found = [r for r in rows if r["layers"] is not None and r["seeds_found"]]
    lines = [f"# Table 1: adjusted evaluation loss, ours / paper (profile `{profile}`)", "",
             f"Each value is the **median over {len(p.eval_seeds)} evaluation sets** of {p.num:,} sequences (keys "
             f"{', '.join(map(str, p.eval_seeds))}), with the min and max over the sets in brackets, of the seed chosen on "
             f"{len(p.selection_seeds)} selection sets of {p.selection_num:,} (keys {', '.join(map(str, p.selection_seeds))}), "
             "which no evaluation set shares. Tolerance is judged on the median: `1.10 x paper + 0.001`; `u0` at 4+ layers: "
             "`10 x paper`.", "",
             f"**{c['within']} of {c['cells']}** trained cells are within tolerance (the chosen seed); **seed 0 alone: "
             f"{c['seed0_within']} of {c['seed0_cells']}**; on the single set of key {p.single_seed} (the paper's one-draw "
             f"protocol, column `single` of `table1.csv`): {c['single_within']} of {c['cells']}. {c['missing']} cells have no "
             "checkpoint (`-`). Cells marked **!** are outside tolerance.", "",
             "| method | L | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for m, L in keys:
        vals = []
        for col in columns:
            r = cell.get((m, L, col))
            if r is None or not r["seeds_found"]:
                vals.append(f"{'diverged' if r and r.get('diverged') else '-'} / {r['paper']:.3g}" if r else "")
            else:
                vals.append(f"{_spread(r)} / {r['paper']:.3g}{'' if r['within'] else ' **!**'}")
        lines.append(f"| {m} | {L or ''} | " + " | ".join(vals) + " |")
    lines += _outside(rows) + _diverged(found) + _seed0(found) + _single(found, p) + _differences(found) + _tails(rows)
    return lines


def _outside(rows: list[dict]) -> list[str]:
    misses = [r for r in rows if r["seeds_found"] and not r["within"]]
    return ["", f"## Cells outside tolerance ({len(misses)})", "",
            "Median [min, max] over the evaluation sets / the paper, the tolerance, and the single set's value:", "",
            *([f"- {_cell(r)}: {_spread(r)} / {r['paper']:.3g} ({r['ratio']:.3g}x; tolerance "
               f"{tolerance(r['method'], r['layers'], r['column'], r['paper']):.3g}; single set {r['single']:.3g})"
               for r in misses] or ["- none"])]


def _diverged(found: list[dict]) -> list[str]:
    """The seeds that diverged after every retry (or whose warm start did) in cells that have other seeds:
    left out of the cell."""
    lost = [f"{_cell(r)} seed {', '.join(map(str, r['diverged_seeds']))} ({r['seeds_found']} seeds found)"
            for r in found if r.get("diverged_seeds")]
    return ["", f"## Seeds that diverged after every retry ({len(lost)} cells)", "",
            "Left out of their cell, with the number of seeds the cell has:", "", *([f"- {x}" for x in lost] or ["- none"])]


def _seed0(found: list[dict]) -> list[str]:
    out = [r for r in found if "seed0_median" in r and not r["seed0_within"]]
    return ["", f"## Seed 0 alone ({len(out)} cells outside tolerance)", "",
            "What `make figures` trains from an empty `data/`. Seed 0's median [min, max] / the paper:", "",
            *([f"- {_cell(r)}: {_spread(r, 'seed0_')} / {r['paper']:.3g} ({r['seed0_median'] / r['paper']:.3g}x)" for r in out]
              or ["- none"])]


def _single(found: list[dict], p: Protocol) -> list[str]:
    flips = [r for r in found if r["within"] != r["single_within"]]
    return ["", f"## The single set of key {p.single_seed} ({len(flips)} cells judged otherwise)", "",
            "Cells whose verdict on the one set differs from the median's (single set / median [min, max] / paper):", "",
            *([f"- {_cell(r)}: {r['single']:.3g} / {_spread(r)} / {r['paper']:.3g}" for r in flips] or ["- none"])]


def _differences(found: list[dict]) -> list[str]:
    """Medians more than ``DIFFERENCE`` above or below the paper, cells whose seeds disagree, and depths
    where the paper's FULL is below its DIAG and ours is not."""
    by_ratio = sorted((r for r in found if r["paper"] > 0), key=lambda r: -r["ratio"])
    above = [r for r in by_ratio if r["ratio"] > 1 + DIFFERENCE]
    below = [r for r in reversed(by_ratio) if r["ratio"] < 1 - DIFFERENCE]
    spread = [r for r in found if r["seeds_found"] > 1 and np.mean(r["seed_medians"]) > SEED_SPREAD * r["median"]]
    cell = {(r["method"], r["layers"], r["column"]): r for r in found}
    order = [(f, d) for (m, L, c), f in cell.items() if m == "FULL" and (d := cell.get(("DIAG", L, c)))
             and f["paper"] < (1 - ORDER_MARGIN) * d["paper"] and not f["median"] < (1 - ORDER_MARGIN) * d["median"]]
    ratio = lambda r: f"- {_cell(r)}: {r['median']:.3g} / {r['paper']:.3g} ({r['ratio']:.3g}x{'' if r['within'] else ', outside tolerance'})"  # noqa: E731
    return ["", "## Where we differ from the paper", "",
            "Computed from the rows above, in tolerance or not. The paper rounds its values to 1-2 significant digits, so a small "
            "value's ratio carries that rounding (0.002 stands for 0.0015 to 0.0025).", "",
            f"**Median more than {DIFFERENCE:.0%} above the paper** ({len(above)} cells):", "", *(map(ratio, above) if above else ["- none"]), "",
            f"**Median more than {DIFFERENCE:.0%} below the paper** ({len(below)} cells):", "", *(map(ratio, below) if below else ["- none"]), "",
            f"**Seeds that disagree** (mean of the seeds' medians more than {SEED_SPREAD:g}x the chosen seed's; {len(spread)} cells):", "",
            *([f"- {_cell(r)}: chosen {r['median']:.3g}, mean {np.mean(r['seed_medians']):.3g} over {r['seeds_found']} seeds" for r in spread]
              or ["- none"]), "",
            f"**The paper's FULL below its DIAG, ours not** (by at least {ORDER_MARGIN:.0%}; {len(order)} cells; FULL / DIAG):", "",
            *([f"- {f['layers']} layers `{f['column']}`: paper {f['paper']:.3g} / {d['paper']:.3g}, ours {f['median']:.3g} / {d['median']:.3g}"
               for f, d in order] or ["- none"])]


def _tails(rows: list[dict]) -> list[str]:
    """The heavy tails: cells whose evaluation sets are dominated by their 10 worst sequences, and the
    expected loss with its standard error where they are not."""
    found = [r for r in rows if r["seeds_found"]]
    tail = sorted((r for r in found if r["tail_dominated"]), key=lambda r: -r["worst10_share"])
    shares = np.array([r["worst10_share"] for r in found if r["worst10_share"] is not None])
    return ["", f"## Heavy tails ({len(tail)} of {len(found)} rows dominated by their tail)", "",
            "Per row of `table1.csv`: `worst10_share`, the largest share over the evaluation sets of a set's adjusted loss that "
            "its 10 worst sequences carry (empty where a set's loss is 0, as the baselines' without noise); `max_sequence`, the largest adjusted loss of one sequence; `expected` and "
            "`expected_stderr`, the mean over all the sets' sequences and its standard error. Where the 10 worst sequences carry "
            f"more than {TAIL_SHARE:.0%} of a set's loss (`tail_dominated`), the expected loss is dominated by the tail: its "
            "estimate and standard error are not to be trusted, and the median over sets is the number to read. "
            f"Median `worst10_share` over the rows: {np.median(shares):.2%}; rows above 10%: {int((shares > 0.1).sum())}.", "",
            *([f"- {_cell(r)}: 10 worst sequences carry up to {r['worst10_share']:.0%}, largest sequence {r['max_sequence']:.3g}, "
               f"median {_spread(r)}" for r in tail] or ["- none"])]
