"""The paper's reported numbers, kept as reference data (never used to produce our results)."""

from __future__ import annotations

import csv
import functools
from importlib import resources

COLUMNS = ("u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "c13", "c135")


@functools.cache
def paper_table1() -> dict[tuple[str, int | None], dict[str, float]]:
    """Table 1 of the paper: ``{(method, layers): {column: adjusted loss}}``.

    Methods ``GDPP``, ``DIAG``, ``FULL`` (layers 1..7) and ``CONSTRR``, ``ADARR``, ``TUNEDRR`` (layers None).
    Columns ``u0``..``u7`` (uniform ``sigma_max``) and ``c13``, ``c135`` (categorical sets).
    """
    text = resources.files("lintx.reference_data").joinpath("table1_paper.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    return {
        (r["method"], int(r["layers"]) if r["layers"] else None): {c: float(r[c]) for c in COLUMNS}
        for r in rows
    }
