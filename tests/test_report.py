import pytest

import lintx.fit as fit
import lintx.store as store
from lintx import evaluation, method, report, table1, table1_text
from lintx.evaluation import Protocol
from lintx.model import ModelConfig
from lintx.method import Budget, Profile
from lintx.fit import get_or_train
from lintx.tasks import Uniform


def test_tolerance_rule():
    assert table1.tolerance("DIAG", 4, "u5", 0.059) == pytest.approx(1.10 * 0.059 + 0.001)
    assert table1.tolerance("DIAG", 5, "u0", 1.81e-07) == pytest.approx(1.81e-06)
    assert table1.tolerance("DIAG", 3, "u0", 0.013) == pytest.approx(1.10 * 0.013 + 0.001)


def test_cache_reuses_and_keys_on_settings(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": len(calls)}

    a = evaluation.cached(tmp_path, {"k": 1}, compute)
    b = evaluation.cached(tmp_path, {"k": 1}, compute)
    c = evaluation.cached(tmp_path, {"k": 2}, compute)
    assert a == b == {"x": 1} and c == {"x": 2} and len(calls) == 2


def test_cache_computes_once_when_asked_concurrently(tmp_path):
    """Two notebooks (make -j2) asking for one evaluation: the second waits for the first's result."""
    import threading
    import time

    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.5)
        return {"x": 1}

    results = []
    threads = [threading.Thread(target=lambda: results.append(evaluation.cached(tmp_path, {"k": 1}, compute))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"x": 1}, {"x": 1}] and len(calls) == 1


SMALL = Protocol(eval_seeds=(10_001, 10_002, 10_003), num=1000, selection_seeds=(20_001, 20_002), selection_num=500)


def test_table1_reports_found_and_missing_cells(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setitem(method.PROFILES, "tiny", Profile("tiny", Budget(steps=20, batch=64, warm_starts=False), 1, "", validation_num=2_000))
    get_or_train(tmp_path, "tiny", ModelConfig("diag", 1), Uniform(1.0), 0)
    # GD++ recorded as diverged after every retry: reported as such, not as untrained
    gdpp = store.checkpoint_path(tmp_path, "tiny", ModelConfig("gdpp", 1), Uniform(1.0), 0)
    store.failure_path(gdpp).write_text('{"error": "test"}')
    rows = table1.table1(tmp_path, "tiny", seeds=[0], protocol=SMALL, columns=["u1"], depths=[1], tune_num=5000)
    by = {(r["method"], r["layers"]): r for r in rows}
    diag = by[("DIAG", 1)]
    assert diag["seeds_found"] == 1 and by[("FULL", 1)]["seeds_found"] == 0 and by[("GDPP", 1)]["diverged"] == 1
    path = store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 1), Uniform(1.0), 0)
    sets = [evaluation.evaluate_checkpoint(tmp_path, path, s, 1000)["adjusted_loss"][-1] for s in SMALL.eval_seeds]
    assert (diag["median"], diag["min"], diag["max"]) == (np.median(sets), min(sets), max(sets))
    assert diag["seed0_median"] == diag["median"] and diag["within"] == (diag["median"] <= table1.tolerance("DIAG", 1, "u1", diag["paper"]))
    assert diag["single"] == evaluation.evaluate_checkpoint(tmp_path, path, 2024, 1000)["adjusted_loss"][-1]
    csv_path, md = table1_text.write_table1(rows, tmp_path / "out", "tiny", SMALL)
    text = md.read_text()
    assert f"| DIAG | 1 | {diag['median']:.3g} [{diag['min']:.3g}, {diag['max']:.3g}] / " in text
    assert "median over 3 evaluation sets" in text and "| GDPP | 1 | diverged / " in text
    assert csv_path.read_text().splitlines()[0].split(",") == table1_text.FIELDS


def test_extra_seeds_are_used_where_present_and_never_trained(tmp_path, monkeypatch):
    monkeypatch.setitem(method.PROFILES, "tiny", Profile("tiny", Budget(steps=10, batch=32, warm_starts=False), 1, "", validation_num=2_000))
    cfg, noise = ModelConfig("gdpp", 1), Uniform(1.0)
    get_or_train(tmp_path, "tiny", cfg, noise, 3)
    trained = []
    monkeypatch.setattr(fit, "get_or_train", lambda *a, **k: trained.append(a) or get_or_train(*a, **k))
    found = fit.checkpoints(tmp_path, "tiny", cfg, noise, seeds=[0], extra_seeds=[1, 3])
    assert [s for s, _ in found] == [0, 3]  # seed 0 trained on demand, seed 3 found, seed 1 neither
    assert [a[4] for a in trained] == [0]
    assert [s for s, _ in fit.checkpoints(tmp_path, "tiny", cfg, noise, seeds=[], extra_seeds=[0, 1, 3])] == [0, 3]
    rows = table1.table1(tmp_path, "tiny", seeds=[0], protocol=SMALL, columns=["u1"], depths=[1], tune_num=5000, extra_seeds=[1, 3])
    row = {(r["method"], r["layers"]): r for r in rows}[("GDPP", 1)]
    assert row["seeds_found"] == 2 and row["seeds"] == [0, 3] and len(row["seed_medians"]) == 2


def test_best_losses_report_the_seed_chosen_on_the_selection_sets(tmp_path, monkeypatch):
    import numpy as np


    monkeypatch.setitem(method.PROFILES, "tiny", Profile("tiny", Budget(steps=10, batch=32, warm_starts=False), 1, "", validation_num=2_000))
    noise = Uniform(1.0)
    for s in (0, 1):
        get_or_train(tmp_path, "tiny", ModelConfig("gdpp", 1), noise, s)
    best = report.best_losses(tmp_path, "tiny", "gdpp", noise, [1, 2], [0], SMALL, train_missing=False, extra_seeds=[1])
    found = fit.checkpoints(tmp_path, "tiny", ModelConfig("gdpp", 1), noise, [0, 1], train_missing=False)
    chosen = evaluation.choose(tmp_path, found, SMALL)[1]
    per_seed = report.readouts(tmp_path, "tiny", ModelConfig("gdpp", 1), noise, [0, 1], SMALL, train_missing=False)
    assert best["median"][0] == per_seed["median"][[p for _, p in found].index(chosen), -1] and np.isnan(best["median"][1])


def test_cached_values_are_computed_with_64_bit_jax_off(tmp_path):
    """With 64-bit JAX on, the noise samplers draw other sigmas from the same key, so an evaluation would be
    of another set than the one its cache entry names. ``cached`` computes with it off, whatever the setting."""
    import jax
    import numpy as np

    from lintx.tasks import Categorical, sample_batch

    def sigmas():
        return {"sigma": np.asarray(sample_batch(jax.random.key(2024), Categorical((1.0, 3.0, 5.0)), 64).sigma).tolist()}

    plain = evaluation.cached(tmp_path / "a", {"k": 1}, sigmas)
    with jax.enable_x64(True):
        assert sigmas() != plain  # what the guard is for
        assert evaluation.cached(tmp_path / "b", {"k": 1}, sigmas) == plain


def test_theory_numbers_are_cached_keyed_on_the_theory_code_and_pruned_when_it_changes(tmp_path, monkeypatch):
    """The theory notebook's numbers come from the evaluation cache, so another machine (whose float32
    results differ in the last bits) redraws the same figures; a change to the theory code recomputes them
    and leaves the old entries to ``prune``."""
    import numpy as np

    from lintx import theory

    gaps = report.two_layer_ridge_gaps(tmp_path, [1.0, 3.0], 1.0, [100, 300], 2024, 32)
    assert gaps.shape == (2,) and gaps[1] < gaps[0]  # Theorem 5.2: the gap closes as n grows
    assert evaluation.stale_evaluations(tmp_path) == []

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a cached theory value")

    monkeypatch.setattr(theory, "two_layer_ridge_gap", fail)
    np.testing.assert_array_equal(report.two_layer_ridge_gaps(tmp_path, [1.0, 3.0], 1.0, [100, 300], 2024, 32), gaps)
    with pytest.raises(AssertionError, match="recomputed"):  # another setting is another entry
        report.two_layer_ridge_gaps(tmp_path, [1.0, 3.0], 3.0, [100, 300], 2024, 32)

    monkeypatch.setattr(evaluation, "code_version", lambda modules: "changed")
    assert len(evaluation.stale_evaluations(tmp_path)) == 1
    with pytest.raises(AssertionError, match="recomputed"):
        report.two_layer_ridge_gaps(tmp_path, [1.0, 3.0], 1.0, [100, 300], 2024, 32)




def test_readme_headline_agrees_with_the_shipped_table():
    """The README's Table 1 counts are those of figures/table1.csv, recomputed here from its rows."""
    import csv
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    rows = [r for r in csv.DictReader(open(root / "figures" / "table1.csv")) if r["layers"]]
    count = lambda field: sum(r[field] == "True" for r in rows)  # noqa: E731
    readme = " ".join((root / "README.md").read_text().split())
    m = re.search(r"\*\*(\d+) of (\d+)\*\* model cells are within tolerance", readme)
    assert m and (int(m[1]), int(m[2])) == (count("within"), len(rows))
    m = re.search(r"\*\*seed 0 alone\*\*, what `make figures` trains from an empty `data/`, gives \*\*(\d+) of (\d+)\*\*", readme)
    assert m and (int(m[1]), int(m[2])) == (count("seed0_within"), len(rows))
    m = re.search(r"one set of 100,000 sequences \(key 2024\), the same models give (\d+) of (\d+)", readme)
    assert m and (int(m[1]), int(m[2])) == (count("single_within"), len(rows))


def test_table1_names_the_seeds_that_diverged_in_cells_that_have_others():
    rows = [{"method": "DIAG", "layers": 6, "column": "u5", "seeds_found": 5, "diverged_seeds": [1]},
            {"method": "DIAG", "layers": 7, "column": "u5", "seeds_found": 5, "diverged_seeds": []},
            {"method": "FULL", "layers": 6, "column": "u6", "seeds_found": 4, "diverged_seeds": [3]}]
    text = "\n".join(table1_text._diverged(rows))
    assert "(2 cells)" in text and "- DIAG 6 `u5` seed 1 (5 seeds found)\n- FULL 6 `u6` seed 3 (4 seeds found)" in text
    assert "- none" in "\n".join(table1_text._diverged(rows[1:2]))


def test_findings_are_checked_on_the_medians():
    """Each finding is computed from the rows: it holds or not as the medians say, naming the cells that break it."""
    def row(m, L, col, median, paper=1.0):
        return {"method": m, "layers": L, "column": col, "seeds_found": 5, "median": median, "paper": paper, "ratio": median / paper}

    rows = [row("TUNEDRR", None, "c13", 0.021), row("ADARR", None, "u4", 0.0495),
            row("DIAG", 5, "c13", 0.020), row("FULL", 5, "c13", 0.0202), row("DIAG", 7, "c13", 0.019), row("FULL", 7, "c13", 0.010),
            row("DIAG", 4, "u4", 0.049), row("FULL", 4, "u4", 0.0498),
            row("GDPP", 4, "u0", 1e-3, paper=1e-4), row("GDPP", 5, "u0", 2e-3, paper=1e-5)]
    text = "\n".join(table1_text._findings(rows))
    assert "FULL below TUNEDRR on `c13` at 7 layers** holds: 0.01 against 0.021" in text
    assert "FULL at most 1.05x DIAG from 5 layers** holds: the largest ratio is 1.010 (5 layers `c13`)" in text
    assert "within 10x the paper from 4 layers** does not hold: 1 of 2 cells; the others: GDPP 5 200x" in text
    assert "below ADARR from 4 layers at `sigma_max >= 4`** does not hold: 1 of 2 cells; above it: FULL 4 `u4` 0.0498 / 0.0495" in text
    assert "not more than 2% above) does not hold: GDPP 5 `u0` 0.002 > 4 layers 0.001." in text
    rows[3]["median"] = 0.0216  # FULL 5 on c13 now 8% above DIAG 5
    text = "\n".join(table1_text._findings(rows))
    assert "FULL at most 1.05x DIAG from 5 layers** does not hold: the largest ratio is 1.080" in text
    assert "FULL 5 `c13` 0.0216 > DIAG 0.02" in text


def test_nesting_breaks_pair_each_model_with_those_it_contains():
    """A break is a model more than the tolerance above a shallower one of its variant or the variant it contains."""
    median = {("GDPP", 1): 1.0, ("GDPP", 2): 1.03, ("DIAG", 2): 0.5, ("DIAG", 3): 0.51, ("FULL", 3): 0.6, ("FULL", 2): 0.4}
    assert table1_text.nesting_breaks(median) == [(("FULL", 3), ("FULL", 2)), (("FULL", 3), ("DIAG", 3)), (("GDPP", 2), ("GDPP", 1))]
    assert table1_text.nesting_breaks(median, tol=0.25) == [(("FULL", 3), ("FULL", 2))]
    assert table1_text.nesting_breaks({("DIAG", 4, "u5"): 1.0, ("GDPP", 4, "u5"): 0.9, ("GDPP", 4, "u4"): 0.5}) == [(("DIAG", 4, "u5"), ("GDPP", 4, "u5"))]
