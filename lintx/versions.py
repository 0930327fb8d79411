"""Versions of lintx and the libraries it depends on, and the numerics versions the caches are keyed on.

A checkpoint's key holds :data:`NUMERICS` and an evaluation's :data:`EVAL_NUMERICS`: explicit versions of
what the code computes, not hashes of its text. A refactor that leaves the numbers unchanged (a renamed
local, a docstring, a faster step with the same results) keeps every shipped file valid; a change that alters
them must bump the version, which makes the old files stale. ``tests/test_golden.py`` enforces it: it trains
tiny models on every code path (each variant, float32 and float64, a warm start, random starts)
and evaluates one, and compares the numbers with those recorded for the current versions.

:func:`code_version` hashes the code of the theory modules, whose cached numbers are keyed on it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from importlib import metadata
from pathlib import Path

NUMERICS = 1  # training: tasks.py, model.py, train.py and fit.py's acceptance and selection
EVAL_NUMERICS = 1  # evaluation: tasks.py, model.py, metrics.py, ridge.py


def _code_only(source: str) -> str:
    """Source with comments, docstrings and formatting normalised away (``ast.unparse``)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


@functools.cache
def code_version(modules: tuple[str, ...]) -> str:
    """SHA-256 (first 16 hex digits) of the code of ``modules``. Docstrings, comments and formatting do not
    count, so editing documentation keeps cached numbers valid."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in modules:
        h.update(name.encode())
        h.update(_code_only((here / name).read_text()).encode())
    return h.hexdigest()[:16]


@functools.cache
def versions() -> dict:
    from lintx import __version__

    out = {"lintx": __version__}
    for pkg in ("jax", "jaxlib", "optax", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[pkg] = "unknown"
    return out
