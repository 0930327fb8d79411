import pytest

import lintx.store as store
from lintx import profiles, report
from lintx.model import ModelConfig
from lintx.profiles import Profile
from lintx.store import get_or_train
from lintx.tasks import Uniform
from lintx.train import TrainConfig


def test_tolerance_rule():
    assert report.tolerance("DIAG", 4, "u5", 0.059) == pytest.approx(1.10 * 0.059 + 0.001)
    assert report.tolerance("DIAG", 5, "u0", 1.81e-07) == pytest.approx(1.81e-06)
    assert report.tolerance("DIAG", 3, "u0", 0.013) == pytest.approx(1.10 * 0.013 + 0.001)


def test_cache_reuses_and_keys_on_settings(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": len(calls)}

    a = report.cached(tmp_path, {"k": 1}, compute)
    b = report.cached(tmp_path, {"k": 1}, compute)
    c = report.cached(tmp_path, {"k": 2}, compute)
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
    threads = [threading.Thread(target=lambda: results.append(report.cached(tmp_path, {"k": 1}, compute))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"x": 1}, {"x": 1}] and len(calls) == 1


def test_table1_reports_found_and_missing_cells(tmp_path, monkeypatch):
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", lambda c, n: TrainConfig(steps=20, batch=64), 1, "", validation_num=2_000))
    get_or_train(tmp_path, "tiny", ModelConfig("diag", 1), Uniform(1.0), 0)
    # GD++ recorded as diverged after every retry: reported as such, not as untrained
    gdpp = store.checkpoint_path(tmp_path, "tiny", ModelConfig("gdpp", 1), Uniform(1.0), 0)
    store.failure_path(gdpp).write_text('{"error": "test"}')
    rows = report.table1(tmp_path, "tiny", seeds=[0], num=2000, columns=["u1"], depths=[1], tune_num=5000)
    by = {(r["method"], r["layers"]): r for r in rows}
    assert by[("DIAG", 1)]["seeds_found"] == 1 and by[("FULL", 1)]["seeds_found"] == 0
    assert 0 < by[("ADARR", None)]["best"] < by[("CONSTRR", None)]["best"] < 0.05
    csv_path, md_path = report.write_table1(rows, tmp_path / "out", "tiny", 2000)
    text = md_path.read_text()
    assert "| DIAG | 1 |" in text and "- / 1.64" in text and "of 1** trained cells" in text
    assert "| GDPP | 1 | diverged / 1.64 |" in text and "(1 cells, `diverged`)" in text
    assert by[("GDPP", 1)]["diverged"] == 1 and by[("FULL", 1)]["diverged"] == 0
    # a cell outside tolerance (20 steps cannot fit) is listed with what was trained for it
    assert not by[("DIAG", 1)]["within"]
    assert "## Cells outside tolerance (1)" in text
    assert f"- DIAG, 1 layer, `u1`: {by[('DIAG', 1)]['best']:.3g} / 1.64 (" in text
    assert "1 seed (0); best seed 0; trained 20 steps at lr 0.03" in text
    # with the standard error of that evaluation, and how many of them the best seed is above its tolerance
    r = by[("DIAG", 1)]
    assert r["best_stderr"] > 0 and f"standard error {r['best_stderr']:.2g}, {(r['best'] - report.tolerance('DIAG', 1, 'u1', r['paper'])) / r['best_stderr']:.1f} of them" in text
    assert "best_stderr" in csv_path.read_text().splitlines()[0]
    # a figure asking for the diverged model's profile or readouts gets empty arrays of the right shape
    empty = report.profiles(tmp_path, "tiny", ModelConfig("gdpp", 1), Uniform(1.0), [0], [0.0, 1.0], 2024, 100)
    assert all(a.shape == (0, 2, 1) for a in empty.values())
    get_or_train(tmp_path, "tiny", ModelConfig("diag", 2), Uniform(1.0), 0)
    found = report.profiles(tmp_path, "tiny", ModelConfig("diag", 2), Uniform(1.0), [0], [0.0, 1.0, 2.0], 2024, 100)
    assert {k: a.shape for k, a in found.items()} == {"loss": (1, 3, 2), "oracle_loss": (1, 3, 1), "adjusted_loss": (1, 3, 2)}
    assert report.readouts(tmp_path, "tiny", ModelConfig("gdpp", 1), Uniform(1.0), [0], 2024, 100).shape == (0, 1)
    # a second build evaluates nothing new: every evaluation is served from the cache
    n_cached = len(list((tmp_path / "evals").glob("*.json")))
    report.table1(tmp_path, "tiny", seeds=[0], num=2000, columns=["u1"], depths=[1], tune_num=5000)
    assert len(list((tmp_path / "evals").glob("*.json"))) == n_cached


def test_extra_seeds_are_used_where_present_and_never_trained(tmp_path, monkeypatch):
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", lambda c, n: TrainConfig(steps=10, batch=32), 1, "", validation_num=2_000))
    cfg, noise = ModelConfig("gdpp", 1), Uniform(1.0)
    get_or_train(tmp_path, "tiny", cfg, noise, 3)
    trained = []
    monkeypatch.setattr(report, "get_or_train", lambda *a, **k: trained.append(a) or get_or_train(*a, **k))
    found = report.checkpoints(tmp_path, "tiny", cfg, noise, seeds=[0], extra_seeds=[1, 3])
    assert [s for s, _ in found] == [0, 3]  # seed 0 trained on demand, seed 3 found, seed 1 neither
    assert [a[4] for a in trained] == [0]
    assert [s for s, _ in report.checkpoints(tmp_path, "tiny", cfg, noise, seeds=[], extra_seeds=[0, 1, 3])] == [0, 3]
    rows = report.table1(tmp_path, "tiny", seeds=[0], num=2000, columns=["u1"], depths=[1], tune_num=5000, extra_seeds=[1, 3])
    row = {(r["method"], r["layers"]): r for r in rows}[("GDPP", 1)]
    assert row["seeds_found"] == 2
    _, md = report.write_table1(rows, tmp_path / "out", "tiny", 2000)
    assert f"| GDPP | 1 | {row['best']:.3g} ({row['mean']:.3g} ± {row['std']:.2g}, 2 seeds) / 1.64" in md.read_text()


def test_best_losses_takes_the_best_seed_per_depth(tmp_path, monkeypatch):
    import numpy as np

    from lintx import plotting

    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", lambda c, n: TrainConfig(steps=10, batch=32), 1, "", validation_num=2_000))
    noise = Uniform(1.0)
    for s in (0, 1):
        get_or_train(tmp_path, "tiny", ModelConfig("gdpp", 1), noise, s)
    best = report.best_losses(tmp_path, "tiny", "gdpp", noise, [1, 2], [0], 2024, 2000, train_missing=False, extra_seeds=[1])
    per_seed = report.readouts(tmp_path, "tiny", ModelConfig("gdpp", 1), noise, [0, 1], 2024, 2000, train_missing=False)
    assert best[0] == per_seed[:, -1].min() and np.isnan(best[1])
    assert plotting.seeds_text([0]) == "seed 0" and plotting.seeds_text([0, 1]) == "best of 2 seeds"
    assert plotting.seeds_text([0], [0, 1, 2]) == "best of seed 0 (+1, 2 where shipped)"


def test_out_of_tolerance_line_names_seeds_retries_and_warm_starts():
    row = {"values": [0.1, 0.05], "trials": [
        {"seed": 0, "steps": 5000, "lr": 0.02 / 3, "retries": 1, "grown_from": "diag-L7-H1-u1-s0-0123456789.npz"},
        {"seed": 3, "steps": 5000, "lr": 0.02, "retries": 0, "grown_from": "diag-L7-H1-u1-s3-0123456789.npz"}]}
    assert report._tried(row) == ("2 seeds (0, 3); best seed 3; trained 5000 steps at lr 0.02; diverged first and "
                                  "retrained at a lower lr: seed 0 at lr 0.0067; warm-started from DIAG L7")
    row["diverged_seeds"] = [1]
    assert report._tried(row).endswith("seed 0 at lr 0.0067; diverged after every retry (or the model it starts from did), "
                                       "so not in the table: seed 1; warm-started from DIAG L7")
    row = {"values": [0.12], "trials": [{"seed": 2, "steps": 3000, "lr": 0.03, "retries": 0, "grown_from": None, "starts": 8}]}
    assert report._tried(row) == ("1 seed (2); best seed 2; trained 3000 steps at lr 0.03; "
                                  "each seed the best of 8 random starts on held-out selection sequences")
    row["trials"][0]["refine"] = ((150, 100_000),)
    assert report._tried(row).endswith("random starts on held-out selection sequences; then refined by 150 L-BFGS "
                                       "iterations on 100,000 sequences")
    row["trials"][0]["refine"] = ((150, 100_000), (300, 200_000))
    assert report._tried(row).endswith("then refined by 150 L-BFGS iterations on 100,000 sequences, then 300 L-BFGS "
                                       "iterations on 200,000 sequences")
    row = {"values": [0.05, 0.04, 0.045], "trials": [
        {"seed": 0, "steps": 2000, "lr": 1e-5, "retries": 0, "grown_from": None, "rival": ("rival", "diag-L7-H1-c135-s0-0123456789.npz")},
        {"seed": 1, "steps": 5000, "lr": 0.01, "retries": 0, "grown_from": None, "rival": ("own", "diag-L7-H1-c135-s1-0123456789.npz")},
        {"seed": 2, "steps": 2000, "lr": 1e-5, "retries": 0, "grown_from": None, "rival": ("rival", "diag-L7-H1-c135-s2-0123456789.npz")}]}
    assert report._tried(row) == ("3 seeds (0, 1, 2); best seed 1; trained 2000 steps at lr 1e-05, 5000 steps at lr 0.01; each seed "
                                  "the better, on held-out selection sequences, of its own training and a fine-tune of DIAG L7 "
                                  "(seed 0, 2 the fine-tune; seed 1 its own)")


def test_table1_names_the_seeds_left_out_of_cells_that_have_others():
    rows = [{"method": "DIAG", "layers": 6, "column": "u5", "seeds_found": 5, "diverged_seeds": [1]},
            {"method": "DIAG", "layers": 7, "column": "u5", "seeds_found": 5, "diverged_seeds": []},
            {"method": "FULL", "layers": 6, "column": "u6", "seeds_found": 4, "diverged_seeds": [3]}]
    line = report._diverged_line(rows)[0]
    assert "the grid runner trains a spare seed in place of each" in line
    assert "the cell has: DIAG 6 `u5` seed 1 (5 seeds found); FULL 6 `u6` seed 3 (4 seeds found). Run for" in line
    assert report._diverged_line(rows[1:2]) == []


def test_cached_values_are_computed_with_64_bit_jax_off(tmp_path):
    """With 64-bit JAX on, the noise samplers draw other sigmas from the same key, so an evaluation would be
    of another set than the one its cache entry names. ``cached`` computes with it off, whatever the setting."""
    import jax
    import numpy as np

    from lintx.tasks import Categorical, sample_batch

    def sigmas():
        return {"sigma": np.asarray(sample_batch(jax.random.key(2024), Categorical((1.0, 3.0, 5.0)), 64).sigma).tolist()}

    plain = report.cached(tmp_path / "a", {"k": 1}, sigmas)
    with jax.enable_x64(True):
        assert sigmas() != plain  # what the guard is for
        assert report.cached(tmp_path / "b", {"k": 1}, sigmas) == plain


def test_theory_numbers_are_cached_keyed_on_the_theory_code_and_pruned_when_it_changes(tmp_path, monkeypatch):
    """The theory notebook's numbers come from the evaluation cache, so another machine (whose float32
    results differ in the last bits) redraws the same figures; a change to the theory code recomputes them
    and leaves the old entries to ``prune``."""
    import numpy as np

    from lintx import theory, versions

    gaps = report.two_layer_ridge_gaps(tmp_path, [1.0, 3.0], 1.0, [100, 300], 2024, 32)
    assert gaps.shape == (2,) and gaps[1] < gaps[0]  # Theorem 5.2: the gap closes as n grows
    assert report.stale_evaluations(tmp_path) == []

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a cached theory value")

    monkeypatch.setattr(theory, "two_layer_ridge_gap", fail)
    np.testing.assert_array_equal(report.two_layer_ridge_gaps(tmp_path, [1.0, 3.0], 1.0, [100, 300], 2024, 32), gaps)
    with pytest.raises(AssertionError, match="recomputed"):  # another setting is another entry
        report.two_layer_ridge_gaps(tmp_path, [1.0, 3.0], 3.0, [100, 300], 2024, 32)

    monkeypatch.setattr(report, "code_version", lambda modules=versions.TRAINING_MODULES: "changed")
    assert len(report.stale_evaluations(tmp_path)) == 1
    with pytest.raises(AssertionError, match="recomputed"):
        report.two_layer_ridge_gaps(tmp_path, [1.0, 3.0], 1.0, [100, 300], 2024, 32)


def test_table1_report_lists_where_we_differ_from_the_paper_within_tolerance_or_not():
    def row(method, layers, column, best, paper, mean=None):
        return report._row(method, layers, column, [best] if mean is None else [best] + [2 * mean - best], paper, [0.0] * (1 if mean is None else 2))

    rows = [row("DIAG", 5, "u1", 0.0028, 0.002),  # 1.4x, within by the absolute +0.001
            row("FULL", 5, "u1", 0.0021, 0.002),  # 1.05x: not listed
            row("GDPP", 5, "u1", 0.009, 0.014),  # below the paper
            row("FULL", 6, "u5", 0.0475, 0.044, mean=0.5),  # seeds disagree, and the paper's FULL is below its DIAG
            row("DIAG", 6, "u5", 0.0448, 0.048)]
    text = "\n".join(report._differences(rows))
    above, below, spread, _, order = text.split("**")[2::2]
    assert "DIAG 5 `u1`: 0.0028 / 0.002 (1.4x)" in above and "FULL 5" not in above and "outside tolerance" not in above
    assert "GDPP 5 `u1`: 0.009 / 0.014 (0.643x)" in below and "DIAG 5" not in below
    assert "FULL 6 `u5`: best 0.0475, mean 0.5 over 2 seeds" in spread
    assert "6 layers `u5`: paper 0.044 / 0.048, ours 0.0475 / 0.0448" in order
    assert "Seed 0 alone** (what `make figures` trains where `data/` lacks a model): 0 of 0" in text  # no trials recorded
    rows[0]["trials"] = [{"seed": 0}]
    rows[3]["trials"] = [{"seed": 0}, {"seed": 1}]  # seed 0 is the better one here: 0.0475 within tolerance
    rows[4]["trials"] = [{"seed": 1}]
    rows[2]["trials"] = [{"seed": 0}]
    rows[2]["values"] = [0.1]  # seed 0 of GD++ far above the paper; its best (another seed) is not
    first = "\n".join(report._differences(rows)).split("Seed 0 alone")[1].split("**The paper")[0]
    assert "2 of 3 cells" in first and "- GDPP 5 `u1`: 0.1 / 0.014 (7.14x)" in first and "DIAG" not in first
    rows[3] = row("FULL", 6, "u5", 0.040, 0.044)  # ours below DIAG too: nothing to list
    assert "- none" in "\n".join(report._differences(rows)).split("FULL below its DIAG")[1]
