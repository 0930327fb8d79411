"""Every notebook runs through papermill with tiny parameters, writing only into a temporary folder; five of
them at ``d = 5, n = 10``, the others at the paper's sizes."""

import json
from pathlib import Path

import papermill as pm
import pytest

from lintx.method import DEFAULT

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

TINY = {
    "fig1_loss_vs_layers.ipynb": dict(profile='tiny', seeds=[0], num=2000, eval_seeds=[10001, 10002], selection_seeds=[20001], selection_num=500, tune_num=5000, columns=['u1', 'u2'], depths=[1, 2], variants=['diag'], d=5, n=10),
    "fig2_variance_profiles.ipynb": dict(profile='tiny', seeds=[0], selection_seeds=[20001], selection_num=500, tune_num=5000, profile_num=1000, columns=['u1', 'u2'], depth=2, depth_column='u1', depths=[1, 2], variants=['diag'], sigma_points=3, d=5, n=10),
    "fig3_categorical.ipynb": dict(profile='tiny', seeds=[0], num=2000, eval_seeds=[10001, 10002], selection_seeds=[20001], selection_num=500, tune_num=5000, profile_num=1000, columns=['c13'], layers=[1, 2], depth=2, depths=[1, 2], variants=['full'], sigma_top=4.0, sigma_step=1.0),
    "fig4_full_weights.ipynb": dict(profile='tiny', seeds=[0], selection_seeds=[20001], selection_num=500, depth=2),
    "fig6_unadjusted_loss.ipynb": dict(profile='tiny', seeds=[0], selection_seeds=[20001], selection_num=500, tune_num=5000, profile_num=1000, column='u1', depth=2, variants=['diag'], sigma_step=1.0),
    "fig7_layer_profiles.ipynb": dict(profile='tiny', seeds=[0, 1], profile_num=1000, depths=[1, 2], variants=['gdpp'], sigma_top=2.0, sigma_step=1.0, d=5, n=10),
    "fig5_layer_readout.ipynb": dict(profile="tiny", seeds=[0, 1], num=2000, eval_seeds=[10001, 10002], selection_seeds=[20001], selection_num=500, tune_num=5000, depths=[1, 2], variants=["diag"], d=5, n=10),
    "table1.ipynb": dict(profile="tiny", seeds=[0], num=2000, eval_seeds=[10001, 10002], selection_seeds=[20001], selection_num=500, tune_num=5000, columns=["u1"], depths=[1]),
    "tails.ipynb": dict(profile="tiny", seeds=[0], selection_seeds=[20001], selection_num=500, num=2000, models=["diag-2-u1"], d=5, n=10),
    "beyond.ipynb": dict(profile="tiny", heads=[1, 2], head_columns=["u1"], head_depths=[1, 2], head_seeds=[0], shapes=["5x10", "4x4"],
                         shape_columns=["u1"], shape_depths=[1, 2], weights_heads=2, weights_column="u1", weights_depth=2, num=2000,
                         eval_seeds=[10001, 10002], selection_seeds=[20001], selection_num=500, tune_num=5000, train_missing=True, doc=""),
    "theory.ipynb": dict(profile="tiny", theory_depth=1, gap_column="u1", columns=["u1"], kappas=[10], eps=1e-3,
                         n_multiples=[2, 5], ridge_ns=[100, 300], num=16),
}
EXPECTED = {
    "fig1_loss_vs_layers.ipynb": ["fig1_loss_vs_layers"],
    "fig2_variance_profiles.ipynb": ["fig2_variance_profiles"],
    "fig3_categorical.ipynb": ["fig3_categorical"],
    "fig4_full_weights.ipynb": ["fig4_full_weights"],
    "fig6_unadjusted_loss.ipynb": ["fig6_unadjusted_loss"],
    "fig7_layer_profiles.ipynb": ["fig7_layer_profiles"],
    "fig5_layer_readout.ipynb": ["fig5_layer_readout"],
    "table1.ipynb": ["table1_heatmap"],
    "tails.ipynb": ["tails"],
    "beyond.ipynb": ["beyond_head_weights", "beyond_shapes"],
    "theory.ipynb": ["theory1_implicit_model", "theory2_quadratic_target", "theory3_gdpp_second_order",
                     "theory4_two_layer_ridge", "theory5a_learned_weights", "theory5b_step_and_shrink"],
}


def run(nb, tmp_path, **params):
    params = {**TINY[nb.name], "data_dir": str(tmp_path / "data"), "fig_dir": str(tmp_path / "figures"), **params}
    return pm.execute_notebook(str(nb), str(tmp_path / nb.name), parameters=params, cwd=str(ROOT), progress_bar=False, kernel_name="python3")


def test_every_notebook_has_tiny_parameters():
    assert NOTEBOOKS and {nb.name for nb in NOTEBOOKS} == set(TINY)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_parameter_has_a_type_that_its_default_has_and_a_help(nb):
    """``papermill --help-notebook`` shows each parameter's type (from its annotation), default and help."""
    params = pm.inspect_notebook(str(nb))
    assert params
    for name, p in params.items():
        assert p["help"], f"{nb.name}: parameter {name} has no help"
        default = eval(p["default"], {})  # the cell's own literal (a list comprehension in tails)
        kind = p["inferred_type_name"]
        outer, _, inner = kind.rstrip("]").partition("[")
        assert outer in {"int", "float", "str", "bool", "list"}, f"{nb.name}: parameter {name} has type {kind!r}"
        assert type(default).__name__ == outer, f"{nb.name}: {name}: {kind} = {p['default']}"
        if outer == "list":
            assert {type(x).__name__ for x in default} == {inner}, f"{nb.name}: {name}: {kind} = {p['default']}"
    assert eval(params["profile"]["default"], {}) == DEFAULT, f"{nb.name}: the profile's default is not the shipped one ({DEFAULT!r})"


@pytest.mark.slow
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_writes_its_figures(nb, tmp_path):
    if nb.name == "tails.ipynb":  # it reads the rows Table 1's notebook writes
        (tmp_path / "figures").mkdir()
        (tmp_path / "figures" / "table1.csv").write_text((ROOT / "figures" / "table1.csv").read_text())
    run(nb, tmp_path, **({"doc": str(tmp_path / "beyond.md")} if nb.name == "beyond.ipynb" else {}))
    if nb.name == "beyond.ipynb":
        text = (tmp_path / "beyond.md").read_text()
        assert "## Heads" in text and "| diag | 2 |" in text and "| 4 | 4 | 1 | `u1` |" in text and "n/a" in text
        assert "- **No divergence** (a finite median) holds" in text and "- **The nesting**" in text
    if nb.name == "table1.ipynb":
        text = (tmp_path / "figures" / "table1.md").read_text()
        assert "| DIAG | 1 |" in text and "| ADARR |" in text and "median over 2 evaluation sets" in text
        assert (tmp_path / "figures" / "table1.csv").read_text().count("\n") == 1 + 3 + 3
    for name in EXPECTED[nb.name]:
        for ext in ("pdf", "png"):
            path = tmp_path / "figures" / f"{name}.{ext}"
            assert path.exists() and path.stat().st_size > 1000, path


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_source_notebooks_are_clean_and_parameterised(nb):
    cells = json.loads(nb.read_text())["cells"]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in cells if c["cell_type"] == "code")


def test_bad_parameter_stops_with_a_clear_message(tmp_path):
    nb = ROOT / "notebooks" / "theory.ipynb"
    with pytest.raises(pm.PapermillExecutionError, match="sigma_max must be a finite number >= 0"):
        run(nb, tmp_path, gap_column="u-1")
    with pytest.raises(pm.PapermillExecutionError, match="unknown training profile"):
        run(nb, tmp_path, profile="fastest")
    with pytest.raises(pm.PapermillExecutionError, match="list of integers"):
        run(ROOT / "notebooks" / "table1.ipynb", tmp_path, seeds="[0, 1]")  # what `papermill -p seeds [0,1]` passes
    with pytest.raises(pm.PapermillExecutionError, match=r"unknown model variant\(s\) \['diagonal'\]"):
        run(ROOT / "notebooks" / "fig1_loss_vs_layers.ipynb", tmp_path, variants=["diagonal"])
    with pytest.raises(pm.PapermillExecutionError, match="sigma_max must be a finite number >= 0"):
        run(ROOT / "notebooks" / "fig2_variance_profiles.ipynb", tmp_path, columns=["u-2"])
    with pytest.raises(pm.PapermillExecutionError, match="depth must be a positive integer"):
        run(ROOT / "notebooks" / "fig4_full_weights.ipynb", tmp_path, depth=0)
    with pytest.raises(pm.PapermillExecutionError, match="train_missing must be True or False, got str 'no'"):
        run(ROOT / "notebooks" / "table1.ipynb", tmp_path, train_missing="no")  # what `papermill -p train_missing no` passes
    with pytest.raises(pm.PapermillExecutionError, match="tune_num must be a positive integer, got 0"):
        run(ROOT / "notebooks" / "table1.ipynb", tmp_path, tune_num=0)
    with pytest.raises(pm.PapermillExecutionError, match="eval_seed must be a non-negative integer, got str 'abc'"):
        run(ROOT / "notebooks" / "fig2_variance_profiles.ipynb", tmp_path, eval_seed="abc")
    with pytest.raises(pm.PapermillExecutionError, match=r"evaluation, selection and single-set seeds must all differ; \[10001\]"):
        run(ROOT / "notebooks" / "fig1_loss_vs_layers.ipynb", tmp_path, selection_seeds=[10001])
    with pytest.raises(pm.PapermillExecutionError, match="shapes must be sizes like '10x20' .* got '10-20'"):
        run(ROOT / "notebooks" / "beyond.ipynb", tmp_path, shapes=["5x10", "10-20"])
    assert not (tmp_path / "data").exists(), "nothing is trained before the parameters are checked"


# Rebuilt from the shipped cache, these must equal the committed files byte for byte (the others are
# rebuilt by `make figures`, which leaves `git status` clean; this subset fits the test suite's time).
REBUILT = {"table1.ipynb": ["table1.md", "table1.csv", "table1_heatmap.png"],
           "fig1_loss_vs_layers.ipynb": ["fig1_loss_vs_layers.png", "fig1_loss_vs_layers.pdf"],
           "fig4_full_weights.ipynb": ["fig4_full_weights.png", "fig4_full_weights.pdf"]}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REBUILT))
def test_figures_rebuilt_from_the_shipped_cache_are_byte_identical(name, tmp_path):
    evals = ROOT / "data" / "evals"
    before = len(list(evals.glob("*.json")))
    pm.execute_notebook(str(ROOT / "notebooks" / name), str(tmp_path / name), cwd=str(ROOT), progress_bar=False, kernel_name="python3",
                        parameters={"fig_dir": str(tmp_path), "train_missing": False})
    assert len(list(evals.glob("*.json"))) == before, "the shipped cache lacked an evaluation, so it was computed"
    for f in REBUILT[name]:
        assert (tmp_path / f).read_bytes() == (ROOT / "figures" / f).read_bytes(), f"{f} differs from the committed figure"
