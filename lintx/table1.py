"""Table 1: our adjusted losses beside the paper's, under the evaluation protocol of :mod:`lintx.evaluation`.

Per cell (method, depth, noise column): the seed chosen on the selection sets, the median over the K
evaluation sets of its adjusted loss (last layer) with the min and max over the sets, its value on the
single set of key 2024, the same for seed 0 alone, and the tail statistics of :mod:`lintx.metrics`. A cell
is within tolerance when its median is at most ``1.10 * paper + 0.001``; in the noiseless column ``u0`` at
4+ layers, where the paper reports 1e-4 to 1e-12, at most ``10 * paper``. :mod:`lintx.table1_text` writes
the rows out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from lintx.evaluation import Protocol, baseline_sets, checkpoint_sets, choose, fill, protocol_sets
from lintx.model import ModelConfig
from lintx.reference import COLUMNS, paper_table1
from lintx.fit import checkpoints, recorded_failure
from lintx.tasks import D, N, noise_from_label

METHODS = ("GDPP", "DIAG", "FULL")
TAIL_SHARE = 0.5  # a set whose 10 worst sequences carry more than this share of its loss is dominated by its tail


def tolerance(method: str, layers, column: str, paper: float) -> float:
    """Largest value of ours that counts as reproducing ``paper`` (see module docstring)."""
    if column == "u0" and layers is not None and layers >= 4:
        return 10 * paper
    return 1.10 * paper + 0.001


def _stats(sets: dict, single: float) -> dict:
    """The reported numbers of one predictor from its per-set statistics (last layer): median, min, max,
    the single-set value, the tail share and largest sequence, and the expected loss over all the sets'
    sequences with its standard error (meaningful only where the tail does not dominate)."""
    last = {k: np.asarray(v, np.float64).reshape(len(v), -1)[:, -1] for k, v in sets.items()}
    a, se = last["adjusted_loss"], last["adjusted_stderr"]
    share = last["worst_share"]  # NaN for a set whose adjusted loss is <= 0 (a baseline equal to the oracle)
    top = float(np.nanmax(share)) if np.isfinite(share).any() else None
    return {"median": float(np.median(a)), "min": float(a.min()), "max": float(a.max()), "single": float(single),
            "worst10_share": top, "max_sequence": float(last["max_sequence"].max()),
            "expected": float(a.mean()), "expected_stderr": float(np.sqrt((se**2).sum()) / len(a)),
            "tail_dominated": top is not None and top > TAIL_SHARE}


def baseline_cells(data_dir, label: str, protocol: Protocol, tune_num: int = 100_000, d: int = D, n: int = N) -> dict:
    """CONSTRR, ADARR and TUNEDRR tuned for ``label`` at ``d``, ``n``: each one's :func:`_stats` over the
    protocol's evaluation sets (:func:`lintx.evaluation.baseline_sets`)."""
    out = {}
    for name, sets in baseline_sets(data_dir, label, protocol, tune_num, d, n).items():
        single = sets.pop("single")
        out[name] = _stats(sets, single)
    return out


def model_cell(data_dir, found: Sequence[tuple[int, Path]], protocol: Protocol) -> dict:
    """The numbers of one model cell from its checkpoints ``found`` (``(seed, path)``): the seed chosen on
    the selection sets (:func:`lintx.evaluation.choose`) and its :func:`_stats`, each seed's median (for
    the spread over seeds), and seed 0's numbers under ``seed0_`` where seed 0 was found."""
    if not found:
        return {"seeds_found": 0, "seeds": [], "seed_medians": []}
    stats = {}
    for s, p in found:
        single = checkpoint_sets(data_dir, p, (protocol.single_seed,), protocol.num)["adjusted_loss"][0, -1]
        stats[s] = _stats(checkpoint_sets(data_dir, p, protocol.eval_seeds, protocol.num), single)
    best = choose(data_dir, found, protocol)[0]
    out = {"seeds_found": len(found), "seeds": [s for s, _ in found], "best_seed": best, **stats[best],
           "seed_medians": [stats[s]["median"] for s, _ in found]}
    if 0 in stats:
        out.update({f"seed0_{k}": stats[0][k] for k in ("median", "min", "max", "single")})
    return out


def _judge(row: dict) -> dict:
    """Ratio to the paper and tolerance, on the median (and on seed 0's median where there is one)."""
    if "median" in row:
        tol = tolerance(row["method"], row["layers"], row["column"], row["paper"])
        row.update(ratio=row["median"] / row["paper"] if row["paper"] > 0 else math.nan, within=bool(row["median"] <= tol),
                   single_within=bool(row["single"] <= tol))
        if "seed0_median" in row:
            row["seed0_within"] = bool(row["seed0_median"] <= tol)
    return row


def table1(data_dir, profile: str, seeds: Sequence[int], protocol: Protocol = Protocol(), columns: Sequence[str] = COLUMNS,
           depths: Sequence[int] = range(1, 8), train_missing: bool = False, tune_num: int = 100_000,
           extra_seeds: Sequence[int] = ()) -> list[dict]:
    """One row per (method, layers, column) and per baseline and column (:func:`model_cell`, judged against
    the paper). Missing checkpoints of ``seeds`` are trained if ``train_missing``, else reported as missing
    (``seeds_found = 0``); ``extra_seeds`` count where they exist."""
    paper = paper_table1()
    cells = {(column, method, L): checkpoints(data_dir, profile, ModelConfig(method.lower(), L), noise_from_label(column),
                                              seeds, train_missing, extra_seeds)
             for column in columns for method in METHODS for L in depths}
    fill(data_dir, [p for found in cells.values() for _, p in found], protocol_sets(protocol))
    rows = []
    for column in columns:
        noise = noise_from_label(column)
        for method in METHODS:
            for L in depths:
                cfg, found = ModelConfig(method.lower(), L), cells[column, method, L]
                row = {"method": method, "layers": L, "column": column, "paper": paper[(method, L)][column],
                       **model_cell(data_dir, found, protocol)}
                row["diverged_seeds"] = [s for s in dict.fromkeys([*seeds, *extra_seeds])
                                         if recorded_failure(data_dir, profile, cfg, noise, s) is not None]
                row["diverged"] = len(row["diverged_seeds"])
                rows.append(_judge(row))
        for name, stats in baseline_cells(data_dir, column, protocol, tune_num).items():
            rows.append(_judge({"method": name, "layers": None, "column": column, "paper": paper[(name, None)][column],
                                "seeds_found": 1, **stats}))
    return rows
