"""Golden numbers: what the code computes for tiny models, on every training and evaluation code path.

Checkpoints are keyed on :data:`lintx.versions.NUMERICS` and evaluations on
:data:`lintx.versions.EVAL_NUMERICS`, not on the text of the code, so a refactor keeps the shipped cache.
These tests are what keeps that honest: a change that alters the numbers fails here until the version is
bumped and ``tests/golden/numerics.json`` regenerated (``python tests/test_golden.py``), which makes the old
cache stale. The comparison allows a relative 1e-5 (float32 results differ in their last bits between
CPUs); a change of what is computed moves them far more.
"""

import dataclasses
import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from lintx import fit, method, metrics, selection, store
from lintx.checkpoint import from_training
from lintx.model import Model, ModelConfig
from lintx.tasks import Categorical, Uniform, sample_batch
from lintx.recipe import TrainConfig
from lintx.train import grow, train, unstack
from lintx.versions import EVAL_NUMERICS, NUMERICS

GOLDEN = Path(__file__).parent / "golden" / "numerics.json"
TC = TrainConfig(steps=6, batch=16, chunk=3)


def _params(p: dict) -> dict:
    return {k: np.asarray(v, np.float64).tolist() for k, v in sorted(p.items())}


def compute() -> dict:
    """Every code path on tiny models: sampling, each variant in float32, FULL in float64, a warm start
    (grow), candidates chosen on the selection stream, the held-out check's stream, and an evaluation."""
    out = {"numerics": NUMERICS, "eval_numerics": EVAL_NUMERICS}
    noise = Uniform(2.0)
    with jax.enable_x64(False):
        b = sample_batch(jax.random.key(0), Categorical((1.0, 3.0)), 4)
        out["sample"] = {"tokens": np.asarray(b.tokens, np.float64).tolist(), "y": np.asarray(b.y_query, np.float64).tolist()}
        for v in ("gdpp", "diag", "full"):
            out[f"train_{v}"] = _params(unstack(train(ModelConfig(v, 2), noise, TC, seeds=(0,)), 0))
        cfg2, cfg3 = ModelConfig("diag", 2), ModelConfig("diag", 3)
        trained = train(cfg2, noise, TC, seeds=(1,))
        parent = unstack(trained, 0)
        out["held_out"] = selection.held_out_loss(from_training(cfg2, noise, TC, trained, 0), 1000)
        out["grow"] = _params(unstack(train(cfg3, noise, TC, seeds=(1,), init=[grow(cfg3, noise, parent, 1, TC)]), 0))
        result = train(cfg2, noise, TC, seeds=fit.start_seeds(2, 2))
        out["starts"] = fit.selection_losses(cfg2, noise, 2, result).tolist()
        r = metrics.evaluate(Model(cfg2, parent), noise, jax.random.key(10_001), 1000)
        out["evaluate"] = {k: np.asarray(v, np.float64).tolist() for k, v in sorted(r.items())}
    with jax.enable_x64(True):
        tc64 = dataclasses.replace(TC, dtype="float64")
        with fit.precision(tc64):
            out["train_full_float64"] = _params(unstack(train(ModelConfig("full", 2), noise, tc64, seeds=(0,)), 0))
    return out


def _flat(x) -> np.ndarray:
    if isinstance(x, dict):
        return np.concatenate([_flat(x[k]) for k in sorted(x)]) if x else np.zeros(0)
    return np.ravel(np.asarray(x, np.float64))


@pytest.mark.slow
def test_numbers_match_those_recorded_for_the_current_numerics_versions():
    golden = json.loads(GOLDEN.read_text())
    assert (golden["numerics"], golden["eval_numerics"]) == (NUMERICS, EVAL_NUMERICS), (
        "the numerics versions changed: regenerate tests/golden/numerics.json (python tests/test_golden.py)")
    now = compute()
    assert sorted(now) == sorted(golden)
    for path in sorted(set(now) - {"numerics", "eval_numerics"}):
        np.testing.assert_allclose(_flat(now[path]), _flat(golden[path]), rtol=1e-5, atol=1e-7, err_msg=(
            f"{path}: the code computes other numbers than NUMERICS={NUMERICS} / EVAL_NUMERICS={EVAL_NUMERICS} recorded. "
            "If that is intended, bump the version in lintx/versions.py and regenerate tests/golden/numerics.json"))


def test_a_refactor_keeps_checkpoint_names_and_a_number_of_the_method_changes_them(tmp_path, monkeypatch):
    """The key holds the numerics version and the method's configuration, not the code's text: the names
    do not move when the code of model.py is edited (simulated by its hash changing), and do when a number
    of the method or the numerics version does."""
    from lintx import versions

    cfg, noise = ModelConfig("diag", 3), Uniform(5.0)
    name = store.checkpoint_path(tmp_path, "brisk", cfg, noise, 0)
    monkeypatch.setattr(versions, "code_version", lambda modules=(): "edited")
    assert store.checkpoint_path(tmp_path, "brisk", cfg, noise, 0) == name
    brisk = method.get_profile("brisk")
    lower = dataclasses.replace(brisk, budget=dataclasses.replace(brisk.budget, lr=brisk.budget.lr / 2))
    assert store.checkpoint_path(tmp_path, lower, cfg, noise, 0).name != name.name
    monkeypatch.setattr(method, "NUMERICS", NUMERICS + 1)
    assert store.checkpoint_path(tmp_path, "brisk", cfg, noise, 0) != name


_NAMES = """
from lintx import store
from lintx.model import ModelConfig
from lintx.tasks import noise_from_label
for profile in ("brisk", "quick"):
    for v in ("gdpp", "diag", "full"):
        for L in (1, 3, 7):
            for label in ("u0", "u5", "c13"):
                print(store.checkpoint_path("data", profile, ModelConfig(v, L), noise_from_label(label), 2).name)
"""


def _names_with(tmp_path, edits: dict) -> list[str]:
    """Checkpoint names computed by a copy of the package with ``edits`` ({file: [(old, new), ...]}) applied."""
    import os
    import shutil
    import subprocess

    root = tmp_path / "copy"
    shutil.copytree(Path(__file__).resolve().parents[1] / "lintx", root / "lintx", ignore=shutil.ignore_patterns("__pycache__"))
    for name, pairs in edits.items():
        path = root / "lintx" / name
        text = path.read_text()
        for old, new in pairs:
            assert old in text, f"{name} no longer holds {old!r}: update this test"
            text = text.replace(old, new)
        path.write_text(text)
    out = subprocess.run([sys.executable, "-c", _NAMES], cwd=root, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(root)})
    return out.stdout.split()


def test_editing_the_code_of_the_model_keeps_every_name_and_a_number_of_the_method_changes_them(tmp_path):
    """A real edit of model.py (its docstring, and a local renamed in ``predict``) in a copy of the package
    leaves every checkpoint name of the ``brisk`` and ``quick`` profiles as it is; a changed number of the
    shipped budget moves every ``brisk`` name and no ``quick`` one."""
    names = _names_with(tmp_path / "a", {})
    assert len(names) == 54 and len(set(names)) == 54
    refactor = [("Linear self-attention stacks", "Stacks of linear self-attention"),
                ("    out = []\n    for mix in _mixers(cfg, params):", "    preds = []\n    for mix in _mixers(cfg, params):"),
                ("        out.append(-e[..., -1])\n    return jnp.stack(out)", "        preds.append(-e[..., -1])\n    return jnp.stack(preds)")]
    assert _names_with(tmp_path / "b", {"model.py": refactor}) == names
    moved = _names_with(tmp_path / "c", {"method.py": [('Profile("brisk", Budget(steps=3200', 'Profile("brisk", Budget(steps=3201')]})
    assert [a != b for a, b in zip(names, moved)] == [i < 27 for i in range(54)]


if __name__ == "__main__":  # regenerate the golden file for the current numerics versions
    GOLDEN.write_text(json.dumps(compute(), sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)
