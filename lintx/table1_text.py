"""``figures/table1.csv`` and ``figures/table1.md`` from the rows of :func:`lintx.table1.table1`.

Every number in the text is computed from the rows: the headline counts, the cells outside tolerance with
their spread over the evaluation sets, seed 0 alone, the single set of the paper's one-draw protocol,
where we differ from the paper, the paper's findings checked on our medians, and the heavy tails.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lintx.evaluation import Protocol
from lintx.table1 import TAIL_SHARE, tolerance
from lintx.tasks import noise_from_label

FIELDS = ["method", "layers", "column", "seeds_found", "diverged", "best_seed", "median", "min", "max", "single", "paper",
          "ratio", "within", "single_within", "seed0_median", "seed0_min", "seed0_max", "seed0_single", "seed0_within",
          "worst10_share", "max_sequence", "expected", "expected_stderr", "tail_dominated"]
DIFFERENCE = 0.10  # a median this far from the paper's value (relative) is listed, in tolerance or not
SEED_SPREAD = 2.0  # a cell whose mean over its seeds' medians is this many times the chosen seed's is listed
ORDER_MARGIN = 0.05  # the paper's FULL counts as below its DIAG when at least this much (relative) lower
NESTING = 0.02  # a model this much (relative) above one it contains or a shallower one breaks the nesting
FULL_OVER_DIAG = 1.05  # from FULL_DEPTH layers, FULL's median at most this many times DIAG's
FULL_DEPTH = 5
NOISELESS_FACTOR, NOISELESS_DEPTH = 10.0, 4  # the noiseless column within this factor of the paper from this depth
ADARR_SIGMA, ADARR_DEPTH = 4.0, 4  # DIAG and FULL below ADARR from this depth where sigma_max is at least this


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
    lines += _outside(rows) + _diverged(found) + _seed0(found) + _single(found, p) + _differences(found) + _findings(rows) + _tails(rows)
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


def _sigma_max(column: str):
    """``sigma_max`` of a uniform column (``u4.5``: 4.5); None for a categorical or fixed one."""
    return getattr(noise_from_label(column), "sigma_max", None)


def below_adarr_expected(method: str, layers: int, column: str) -> bool:
    """Whether the paper's finding puts this model below ADARR: DIAG or FULL with ``ADARR_DEPTH`` or more layers
    on a uniform column with ``sigma_max >= ADARR_SIGMA``."""
    s = _sigma_max(column)
    return method in ("DIAG", "FULL") and layers >= ADARR_DEPTH and s is not None and s >= ADARR_SIGMA


def nesting_breaks(median: dict[tuple, float], tol: float = NESTING) -> list[tuple[tuple, tuple]]:
    """The nesting's breaks among medians keyed ``(method, layers, *rest)``: each pair ``(outer, inner)`` where
    ``outer`` contains ``inner`` (one layer more, FULL over DIAG, DIAG over GD++ at one depth) and its median
    is more than ``tol`` (relative) above it."""
    breaks = []
    for (m, L, *rest), v in sorted(median.items()):
        for inner in ((m, L - 1, *rest), ({"FULL": "DIAG", "DIAG": "GDPP"}.get(m), L, *rest)):
            if inner in median and v > (1 + tol) * median[inner]:
                breaks.append(((m, L, *rest), inner))
    return breaks


def _findings(rows: list[dict]) -> list[str]:
    """The paper's findings checked on our medians (Sec. 6, Table 1): FULL below TUNEDRR on ``c13`` at its
    deepest layer; from :data:`FULL_DEPTH` layers FULL at most :data:`FULL_OVER_DIAG` times DIAG; the noiseless
    column within :data:`NOISELESS_FACTOR` of the paper from :data:`NOISELESS_DEPTH` layers; DIAG and FULL below
    ADARR from :data:`ADARR_DEPTH` layers at ``sigma_max >= ADARR_SIGMA``; and the nesting (a deeper model, FULL
    over DIAG, DIAG over GD++, by more than :data:`NESTING`)."""
    cell = {(r["method"], r["layers"], r["column"]): r for r in rows if r["seeds_found"]}
    models = {k: r for k, r in cell.items() if k[1] is not None}
    verdict = lambda ok: "holds" if ok else "does not hold"  # noqa: E731
    out = ["", "## The paper's findings, on our medians", "",
           "Each finding of the paper that Table 1 shows, checked on the medians above (the chosen seed's):", ""]
    full = sorted((k for k in models if k[0] == "FULL" and k[2] == "c13"), key=lambda k: k[1])
    if full and ("TUNEDRR", None, "c13") in cell:
        f, t = models[full[-1]], cell["TUNEDRR", None, "c13"]
        out.append(f"- **FULL below TUNEDRR on `c13` at {f['layers']} layers** {verdict(f['median'] < t['median'])}: "
                   f"{f['median']:.3g} against {t['median']:.3g} (the paper: {f['paper']:.3g} against {t['paper']:.3g}).")
    pairs = [(models[k], models[("DIAG", *k[1:])]) for k in models
             if k[0] == "FULL" and k[1] >= FULL_DEPTH and ("DIAG", *k[1:]) in models]
    if pairs:
        over = [(f, d) for f, d in pairs if f["median"] > FULL_OVER_DIAG * d["median"]]
        worst = max(pairs, key=lambda p: p[0]["median"] / p[1]["median"])
        out.append(f"- **FULL at most {FULL_OVER_DIAG:g}x DIAG from {FULL_DEPTH} layers** {verdict(not over)}: the largest "
                   f"ratio is {worst[0]['median'] / worst[1]['median']:.3f} ({worst[0]['layers']} layers `{worst[0]['column']}`)"
                   + "".join(f"; {f['layers']} layers `{f['column']}`: {f['median'] / d['median']:.3f}" for f, d in over if f is not worst[0]) + ".")
    quiet = [r for k, r in models.items() if k[2] == "u0" and k[1] >= NOISELESS_DEPTH and r["paper"] > 0]
    if quiet:
        far = [f"{r['method']} {r['layers']} {r['ratio']:.3g}x" for r in quiet if r["median"] > NOISELESS_FACTOR * r["paper"]]
        out.append(f"- **The noiseless column within {NOISELESS_FACTOR:g}x the paper from {NOISELESS_DEPTH} layers** "
                   f"{verdict(not far)}: {len(quiet) - len(far)} of {len(quiet)} cells" + (f"; the others: {', '.join(far)}" if far else "") + ".")
    noisy = [(r, cell["ADARR", None, k[2]]) for k, r in models.items() if below_adarr_expected(*k) and ("ADARR", None, k[2]) in cell]
    if noisy:
        above = [f"{_cell(r)} {r['median']:.3g} / {a['median']:.3g}" for r, a in noisy if not r["median"] < a["median"]]
        out.append(f"- **DIAG and FULL below ADARR from {ADARR_DEPTH} layers at `sigma_max >= {ADARR_SIGMA:g}`** "
                   f"{verdict(not above)}: {len(noisy) - len(above)} of {len(noisy)} cells" + (f"; above it: {', '.join(above)}" if above else "") + ".")
    breaks = [f"{_cell(models[k])} {models[k]['median']:.3g} > {f'{k[1] - 1} layers' if j[0] == k[0] else j[0]} {models[j]['median']:.3g}"
              for k, j in nesting_breaks({k: r["median"] for k, r in models.items()})]
    out.append(f"- **The nesting** (a deeper model, FULL against DIAG, DIAG against GD++, not more than {NESTING:.0%} above) "
               f"{verdict(not breaks)}" + (f": {'; '.join(breaks)}." if breaks else "."))
    return out


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
