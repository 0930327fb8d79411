"""The beyond-the-paper summaries, on rows whose answers are known."""

import math

import pytest

from lintx import beyond


def _row(variant, heads, L, column, median, d=10, n=20):
    return {"variant": variant, "heads": heads, "layers": L, "d": d, "n": n, "column": column, "seeds_found": 1, "median": median}


ROWS = [_row("full", 1, L, "u5", 1.0 / L) for L in (3, 4)] + [_row("diag", 1, L, "u5", 1.1 / L) for L in (3, 4)] \
    + [_row("full", 2, L, "u5", 0.9 / L) for L in (3, 4)] + [_row("diag", 2, L, "u5", 1.02 / L) for L in (3, 4)]


def test_heads_comparison_divides_diag_by_single_head_full_and_full_by_diag_per_head_count():
    out = beyond.heads_comparison(ROWS, ["u5"], [3, 4], [1, 2])
    assert [r["layers"] for r in out] == [3, 4]
    for r in out:
        assert r["diag_1_over_full_1"] == pytest.approx(1.1) and r["diag_2_over_full_1"] == pytest.approx(1.02)
        assert r["full_over_diag_1"] == pytest.approx(1 / 1.1) and r["full_over_diag_2"] == pytest.approx(0.9 / 1.02)


def test_a_missing_row_is_an_error_and_a_model_without_checkpoints_a_nan():
    with pytest.raises(KeyError, match="0 rows match"):
        beyond.heads_comparison(ROWS, ["c13"], [3], [1])
    rows = ROWS + [{**_row("full", 4, 3, "u5", 0), "seeds_found": 0, "median": math.nan}, _row("diag", 4, 3, "u5", 0.3)]
    assert math.isnan(beyond.heads_comparison(rows, ["u5"], [3], [4])[0]["full_over_diag_4"])


def test_against_adarr_takes_the_best_learned_model_of_each_shape():
    rows = [_row("gdpp", 1, 2, "u1", 0.5, 5, 10), _row("full", 1, 3, "u1", 0.2, 5, 10), _row("diag", 1, 3, "u1", 0.3, 10, 10)]
    base = [{"variant": b, "d": 5, "n": 10, "column": "u1", "median": m} for b, m in (("CONSTRR", 0.4), ("ADARR", 0.25), ("TUNEDRR", 0.1))]
    base += [{"variant": "CONSTRR", "d": 10, "n": 10, "column": "u1", "median": 0.6}]  # at n = d ADARR and TUNEDRR are not defined
    out = beyond.against_adarr(rows, base, ["u1"], [(5, 10), (10, 10), (20, 40)])
    assert [(r["d"], r["n"], r["best"]) for r in out] == [(5, 10, "full 3"), (10, 10, "diag 3")]  # (20, 40): no models, no row
    assert out[0]["over_adarr"] == pytest.approx(0.8) and out[0]["over_tunedrr"] == pytest.approx(2.0)
    assert out[0]["n_over_d"] == 2 and out[1]["over_constrr"] == pytest.approx(0.5)
    assert math.isnan(out[1]["adarr"]) and math.isnan(out[1]["over_adarr"]) and math.isnan(out[1]["over_tunedrr"])


def test_markdown_grid_has_a_line_per_variant_and_head_count_and_a_dash_where_nothing_was_trained():
    lines = beyond.markdown_grid(ROWS + [{**_row("full", 4, 3, "u5", math.nan), "seeds_found": 0}], ("variant", "heads"), [3, 4], ["u5"])
    assert lines[0] == "| variant | heads | `u5` L=3 | `u5` L=4 |"
    assert "| full | 1 | 0.333 | 0.25 |" in lines and "| full | 4 | - | - |" in lines and len(lines) == 2 + 5


def test_promises_check_only_settings_table1_lacks_and_name_each_break():
    rows = [_row("gdpp", 1, L, "u5", m, 5, 10) for L, m in ((3, 0.30), (4, 0.20), (5, 0.19))] \
        + [_row("diag", 1, L, "u5", m, 5, 10) for L, m in ((3, 0.25), (4, 0.21), (5, 0.12))] \
        + [_row("full", 1, L, "u5", m, 5, 10) for L, m in ((3, 0.24), (4, 0.08), (5, 0.13))] \
        + [_row("diag", 2, 4, "u5", math.inf), _row("full", 2, 4, "u5", 0.05)] \
        + [_row("diag", 1, 4, "u5", 9.0)]  # Table 1's own setting (one head, d = 10, n = 20): not checked
    base = [{"variant": "ADARR", "d": d, "n": n, "column": "u5", "median": 0.1} for d, n in ((5, 10), (10, 20))]
    out = beyond.promises(rows, base)
    assert out["finite"] == (11, ["DIAG 4 `u5` at d = 10, n = 20, 2 heads"])
    checked, broken = out["nesting"]  # DIAG 4 above GD++ 4, FULL 5 above FULL 4 and above DIAG 5
    assert checked == 10 and sorted(broken) == ["DIAG 4 `u5` at d = 5, n = 10 0.21 > GDPP 0.2",
                                                "FULL 5 `u5` at d = 5, n = 10 0.13 > 4 layers 0.08 and DIAG 0.12"]
    assert out["full_over_diag"] == (1, ["FULL 5 `u5` at d = 5, n = 10: 1.083"])
    checked, broken = out["below_adarr"]  # DIAG 4-5 and FULL 4-5 at (5, 10), FULL 4 with 2 heads
    assert checked == 5 and sorted(broken) == sorted(["DIAG 4 `u5` at d = 5, n = 10 0.21 / 0.1", "DIAG 5 `u5` at d = 5, n = 10 0.12 / 0.1",
                                                      "FULL 5 `u5` at d = 5, n = 10 0.13 / 0.1"])
