"""Versions of lintx and the libraries it depends on, and a hash of the code that defines a trained model.

:func:`code_version` hashes the source of the modules whose change can change a trained checkpoint
(task sampling, model, training). Caches key on it, so a change there makes old checkpoints stale instead
of silently reused; edits elsewhere (plots, notebooks, docs) do not.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from importlib import metadata
from pathlib import Path

TRAINING_MODULES = ("tasks.py", "model.py", "train.py")
REFINE_MODULES = ("refine.py",)  # keyed only for the checkpoints a profile refines (lintx.store)


def _code_only(source: str) -> str:
    """Source with comments, docstrings and formatting normalised away (``ast.unparse``)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


@functools.cache
def code_version(modules: tuple[str, ...] = TRAINING_MODULES) -> str:
    """SHA-256 (first 16 hex digits) of the code of ``modules`` (by default the training-relevant ones).

    Docstrings, comments and formatting do not count, so editing documentation keeps shipped
    checkpoints valid; any change to what the code does makes them stale.
    """
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
