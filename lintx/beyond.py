"""Beyond the paper (``docs/beyond.md``, ``make beyond``): multi-head models and larger problems, trained by
the shipped method with nothing tuned, reported under Table 1's protocol (:mod:`lintx.table1`).

- **Heads.** DIAG and FULL with ``H`` heads a layer (``ModelConfig(..., heads=H)``; Sec. 4 of the paper
  trains one, and mentions multi-head DIAG in passing), beside Table 1's single-head rows. Two questions:
  does DIAG with ``H`` heads match FULL with one, and does a second head close FULL's gap to DIAG?
- **Shapes.** The paper's ``d = 10, n = 20`` beside other input sizes ``d`` and context lengths ``n``: where
  does the learned algorithm stop beating ADARR as the context shortens?

The grids are the runner's (``python -m lintx train --heads H``, ``--d D --n N``); what they cost is in
``benchmarks/RESULTS.md`` ("Beyond the paper").
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lintx.evaluation import Protocol, fill, protocol_sets
from lintx.fit import checkpoints
from lintx.method import get_profile, names
from lintx.model import ModelConfig
from lintx.store import logged_seconds
from lintx.table1 import baseline_cells, model_cell
from lintx.table1_text import ADARR_DEPTH, ADARR_SIGMA, FULL_DEPTH, FULL_OVER_DIAG, NESTING, below_adarr_expected, nesting_breaks
from lintx.tasks import noise_from_label

HEADS = (1, 2, 4)
HEAD_VARIANTS = ("diag", "full")
HEAD_COLUMNS = ("u5", "c13")
SHAPES = ((10, 20), (5, 10), (20, 40), (10, 10), (10, 40))  # (d, n): the paper's first
SHAPE_COLUMNS = ("u1", "u5", "c13")
SHAPE_VARIANTS = ("gdpp", "diag", "full")
BASELINES = ("CONSTRR", "ADARR", "TUNEDRR")
TABLE1_SETTING = (1, 10, 20)  # (heads, d, n) of Table 1's models: the study's own, beside which these are read


def outside_table1(heads: int, d: int, n: int) -> bool:
    """Whether a model with ``heads`` heads at ``(d, n)`` is one that Table 1 lacks (this page's own)."""
    return (heads, d, n) != TABLE1_SETTING


def model_rows(data_dir, profile: str, cfgs: Sequence[ModelConfig], columns: Sequence[str], seeds: Sequence[int],
               protocol: Protocol = Protocol(), train_missing: bool = False) -> list[dict]:
    """One row per model and noise column: :func:`lintx.table1.model_cell` of its seeds' checkpoints (the seed
    chosen on the selection sets, the median and spread over the evaluation sets), with the model's
    ``variant, layers, heads, d, n``. A model with no checkpoint has ``seeds_found = 0``."""
    cells = {(c, cfg): checkpoints(data_dir, profile, cfg, noise_from_label(c), seeds, train_missing)
             for c in columns for cfg in cfgs}
    fill(data_dir, [p for found in cells.values() for _, p in found], protocol_sets(protocol))
    return [{"variant": cfg.variant, "layers": cfg.layers, "heads": cfg.heads, "d": cfg.d, "n": cfg.n, "column": c,
             **model_cell(data_dir, found, protocol)} for (c, cfg), found in cells.items()]


def baseline_rows(data_dir, columns: Sequence[str], shapes: Sequence[tuple[int, int]], protocol: Protocol = Protocol(),
                  tune_num: int = 100_000) -> list[dict]:
    """CONSTRR, ADARR and TUNEDRR of each noise column and shape ``(d, n)``, tuned and evaluated as in Table 1."""
    rows = []
    for d, n in shapes:
        for c in columns:
            for name, stats in baseline_cells(data_dir, c, protocol, tune_num, d, n).items():
                rows.append({"variant": name, "layers": None, "heads": None, "d": d, "n": n, "column": c, "seeds_found": 1, **stats})
    return rows


def _median(rows: list[dict], **match) -> float:
    """The median of the one row matching ``match`` (NaN where it has no checkpoint)."""
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    if len(found) != 1:
        raise KeyError(f"{len(found)} rows match {match}")
    return found[0].get("median", np.nan)


def heads_comparison(rows: list[dict], columns: Sequence[str], depths: Sequence[int], heads: Sequence[int]) -> list[dict]:
    """The two questions of the heads table, per column and depth: DIAG with ``H`` heads over FULL with one
    (``diag_H_over_full_1``; at most 1.05: it matches), and FULL's gap to DIAG with one head and with ``H``
    (``full_over_diag``, per head count: below 1 where FULL is the better)."""
    out = []
    for c in columns:
        for L in depths:
            full1 = _median(rows, variant="full", heads=1, layers=L, column=c)
            r = {"column": c, "layers": L}
            for H in heads:
                diag, full = (_median(rows, variant=v, heads=H, layers=L, column=c) for v in ("diag", "full"))
                r[f"diag_{H}_over_full_1"] = diag / full1
                r[f"full_over_diag_{H}"] = full / diag
            out.append(r)
    return out


def against_adarr(rows: list[dict], baselines: list[dict], columns: Sequence[str], shapes: Sequence[tuple[int, int]]) -> list[dict]:
    """Per shape and column: the best learned model (lowest median over variants and depths, its name) and its
    ratio to CONSTRR, ADARR and TUNEDRR (NaN where a baseline is not defined: ADARR and TUNEDRR at ``n <= d``).
    Below 1 the learned algorithm beats the baseline."""
    out = []
    for d, n in shapes:
        for c in columns:
            learned = [r for r in rows if (r["d"], r["n"], r["column"]) == (d, n, c) and r.get("seeds_found")]
            if not learned:
                continue
            best = min(learned, key=lambda r: r["median"])
            base = {b["variant"]: b["median"] for b in baselines if (b["d"], b["n"], b["column"]) == (d, n, c)}
            row = {"d": d, "n": n, "n_over_d": n / d, "column": c, "best": f"{best['variant']} {best['layers']}", "median": best["median"]}
            for name in BASELINES:
                row[name.lower()] = base.get(name, np.nan)
                row[f"over_{name.lower()}"] = best["median"] / row[name.lower()]
            out.append(row)
    return out


def promises(rows: list[dict], baselines: list[dict]) -> dict[str, tuple[int, list[str]]]:
    """The method's promises (``docs/method.md``) on the models of settings Table 1 lacks (more heads, or another
    ``(d, n)``), each group of one ``(d, n, heads)`` checked on its own: no divergence (a finite median); the
    nesting (:func:`lintx.table1_text.nesting_breaks`); from ``FULL_DEPTH`` layers FULL at most
    ``FULL_OVER_DIAG`` times DIAG; from ``ADARR_DEPTH`` layers DIAG and FULL below ADARR of their ``(d, n)``
    where ``sigma_max >= ADARR_SIGMA``. Per promise: the cells checked and those that break it."""
    found = [r for r in rows if r.get("seeds_found") and r["layers"] is not None and outside_table1(r["heads"], r["d"], r["n"])]
    key = lambda r: (r["variant"].upper(), r["layers"], r["column"], r["d"], r["n"], r["heads"])  # noqa: E731
    name = lambda k: f"{k[0]} {k[1]} `{k[2]}` at d = {k[3]}, n = {k[4]}" + (f", {k[5]} heads" if k[5] > 1 else "")  # noqa: E731
    median = {key(r): r["median"] for r in found}
    finite = {k: v for k, v in median.items() if np.isfinite(v)}
    adarr = {(b["column"], b["d"], b["n"]): b["median"] for b in baselines if b["variant"] == "ADARR"}
    pairs = [(k, ("DIAG", *k[1:])) for k in finite if k[0] == "FULL" and k[1] >= FULL_DEPTH and ("DIAG", *k[1:]) in finite]
    noisy = [k for k in finite if (k[2], k[3], k[4]) in adarr and below_adarr_expected(*k[:3])]
    above: dict[tuple, list[str]] = {}  # each model that breaks the nesting: what it is above
    for k, j in nesting_breaks(finite, NESTING):
        above.setdefault(k, []).append(f"{f'{j[1]} layers' if j[0] == k[0] else j[0]} {finite[j]:.3g}")
    return {"finite": (len(median), [name(k) for k in median if k not in finite]),
            "nesting": (len(finite), [f"{name(k)} {finite[k]:.3g} > {' and '.join(v)}" for k, v in above.items()]),
            "full_over_diag": (len(pairs), [f"{name(k)}: {finite[k] / finite[j]:.3f}" for k, j in pairs if finite[k] > FULL_OVER_DIAG * finite[j]]),
            "below_adarr": (len(noisy), [f"{name(k)} {finite[k]:.3g} / {adarr[k[2], k[3], k[4]]:.3g}" for k in noisy
                                         if not finite[k] < adarr[k[2], k[3], k[4]]])}


def markdown_grid(rows: list[dict], keys: Sequence[str], depths: Sequence[int], columns: Sequence[str]) -> list[str]:
    """A markdown table: one line per distinct ``keys`` of the rows (e.g. variant and heads), per column a
    cell for each depth (the median, ``-`` where there is no checkpoint)."""
    lines = ["| " + " | ".join(keys) + " | " + " | ".join(f"`{c}` L={L}" for c in columns for L in depths) + " |",
             "|" + "---|" * (len(keys) + len(columns) * len(depths))]
    groups = list(dict.fromkeys(tuple(r[k] for k in keys) for r in rows if r["layers"] is not None))
    for g in groups:
        cells = []
        for c in columns:
            for L in depths:
                m = [r for r in rows if tuple(r[k] for k in keys) == g and r["layers"] == L and r["column"] == c]
                cells.append(f"{m[0]['median']:.3g}" if m and m[0].get("seeds_found") else "-")
        lines.append("| " + " | ".join(map(str, g)) + " | " + " | ".join(cells) + " |")
    return lines


def training_hours(data_dir, profile: str, cfgs: Sequence[ModelConfig], columns: Sequence[str], seeds: Sequence[int]) -> float:
    """CPU-hours the training log records for these models and every model they start from (their lineage:
    GD++ with ``H`` heads for DIAG with ``H``), each counted once at its last logged training. An upper
    bound on CPU time where processes shared the cores."""
    prof = get_profile(profile)
    wanted = {nm for c in columns for cfg in cfgs for s in seeds for nm in names(prof, cfg, noise_from_label(c), s).values()}
    seconds = logged_seconds(data_dir, prof)
    return sum(seconds[nm] for nm in wanted if nm in seconds) / 3600


def _seeds(seeds: Sequence[int]) -> str:
    return ("seeds " if len(seeds) > 1 else "seed ") + ", ".join(map(str, seeds))


def page(profile: str, protocol: Protocol, heads: dict, shapes: dict, figures: dict) -> str:
    """``docs/beyond.md``: the heads table and its two answers, the shapes' comparison with ADARR, and the
    figures, every number from the rows. ``heads`` and ``shapes``: ``rows`` (and ``baselines``), the grid
    (``columns``, ``depths``, ``seeds``, ``heads`` or ``shapes``), ``hours``, and the summaries
    (:func:`heads_comparison`, :func:`against_adarr`); ``figures``: name -> path relative to ``docs/``."""
    sets = f"median over {len(protocol.eval_seeds)} evaluation sets of {protocol.num:,} sequences, the seed chosen on the selection sets"
    h, s = heads, shapes
    out = ["# Beyond the paper: multi-head models and larger problems", "",
           f"Generated by `make beyond` (`notebooks/beyond.ipynb`) from the `{profile}` checkpoints: every model trained by the",
           "shipped method (`docs/method.md`) with nothing tuned for these settings, and reported under Table 1's protocol",
           f"({sets}; adjusted loss, the oracle's subtracted).", "",
           "## Heads", "",
           f"DIAG and FULL with {', '.join(map(str, h['heads']))} heads a layer at `d = 10, n = 20`, {_seeds(h['seeds'])}. "
           f"Training of the models Table 1 lacks: {h['hours']:.2f} CPU-hours (the training log, their warm starts included).", ""]
    out += markdown_grid(h["rows"], ("variant", "heads"), h["depths"], h["columns"])
    deep = [r for r in h["comparison"] if r["layers"] >= 3] or h["comparison"]  # 3+ layers, where the variants part
    least = min(r["layers"] for r in deep)
    out += ["", "A `-` is a model not trained: the grids are cut to their budget (`benchmarks/RESULTS.md`, \"Beyond the paper\").", ""]
    for H in h["heads"]:
        ratio = [x for r in deep if np.isfinite(x := r[f"diag_{H}_over_full_1"])]
        gap = [x for r in deep if np.isfinite(x := r[f"full_over_diag_{H}"])]
        s_ = "s" * (H > 1)
        out.append(f"- **DIAG with {H} head{s_} against FULL with one** ({least}+ layers): "
                   + (f"DIAG / FULL from {min(ratio):.3g} to {max(ratio):.3g} (median {np.median(ratio):.3g}); within 5% in "
                      f"{sum(x <= 1.05 for x in ratio)} of {len(ratio)} cells." if ratio else "not trained."))
        out.append(f"- **FULL against DIAG, both with {H} head{s_}**: "
                   + (f"FULL / DIAG from {min(gap):.3g} to {max(gap):.3g} (median {np.median(gap):.3g}) in {len(gap)} cells."
                      if gap else "not trained."))
    out += ["", f"![learned weights per head]({figures['weights']})", "",
            "## Shapes", "",
            f"GD++, DIAG and FULL with {min(s['depths'])}-{max(s['depths'])} layers at each `(d, n)`, {_seeds(s['seeds'])}, "
            f"with the ridge baselines tuned for each. Training of the models Table 1 lacks: {s['hours']:.2f} CPU-hours.", "",
            f"![loss against layers per shape]({figures['shapes']})", "",
            "The best learned model of each shape and column against the ridge baselines (below 1: the learned algorithm wins; "
            "`n/a`: ADARR and TUNEDRR are not defined at `n <= d`, where least squares leaves no residual to estimate the noise from):", "",
            "| d | n | n / d | column | best | its loss | CONSTRR | ADARR | TUNEDRR | / CONSTRR | / ADARR | / TUNEDRR |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    num = lambda x: f"{x:.3g}" if np.isfinite(x) else "n/a"  # noqa: E731
    out += [f"| {r['d']} | {r['n']} | {r['n_over_d']:g} | `{r['column']}` | {r['best']} | {num(r['median'])} | "
            + " | ".join(num(r[k]) for k in ("constrr", "adarr", "tunedrr", "over_constrr", "over_adarr", "over_tunedrr")) + " |"
            for r in s["adarr"]]
    lost = [r for r in s["adarr"] if r["over_adarr"] >= 1]
    learned = {(r["d"], r["n"], r["column"]) for r in s["adarr"]}  # against_adarr has a row where a model was trained
    untrained = [f"`{c}` at d = {d}, n = {n}" for d, n in s["shapes"] for c in s["columns"] if (d, n, c) not in learned]
    out += ["", "Not trained (the budget): " + ", ".join(untrained) + "."] if untrained else []
    out += ["", "Where the learned algorithm does not beat ADARR: " + (", ".join(f"`{r['column']}` at d = {r['d']}, n = {r['n']}" for r in lost)
                                                                      if lost else "nowhere in this grid") + "."]
    undefined = [r for r in s["adarr"] if not np.isfinite(r["adarr"])]
    out += ["", "Where ADARR is not defined (`n <= d`), the best learned model against CONSTRR: "
            + ", ".join(f"`{r['column']}` at d = {r['d']}, n = {r['n']} {r['over_constrr']:.3g}" for r in undefined) + "."] if undefined else []
    out += [""]
    out += ["## The method's promises on these settings", "",
            "None of these settings is Table 1's, and nothing was tuned on them. Each group of one `(d, n, heads)` checked "
            "on its own (`lintx.beyond.promises`):", ""]
    said = {"finite": "**No divergence** (a finite median)",
            "nesting": f"**The nesting** (a deeper model, FULL against DIAG, DIAG against GD++, not more than {NESTING:.0%} above)",
            "full_over_diag": f"**FULL at most {FULL_OVER_DIAG:g}x DIAG from {FULL_DEPTH} layers**",
            "below_adarr": f"**DIAG and FULL below ADARR from {ADARR_DEPTH} layers at `sigma_max >= {ADARR_SIGMA:g}`**"}
    for k, (checked, broken) in promises(h["rows"] + s["rows"], s["baselines"]).items():
        out.append(f"- {said[k]} {'holds' if not broken else 'does not hold'}: {checked - len(broken)} of {checked} cells"
                   + (f"; the others: {'; '.join(broken)}." if broken else "."))
    return "\n".join(out + [""])
