"""The evaluation protocol: disjoint evaluation and selection sets, the median and spread over the sets,
and a seed chosen on the selection sets alone."""

import jax
import numpy as np
import pytest

from lintx import evaluation, metrics, table1
from lintx.evaluation import Protocol
from lintx.selection import _SELECTION_STREAM, _VALIDATION_STREAM
from lintx.method import START_STRIDE


def test_protocol_refuses_shared_seeds_and_bad_input_naming_them():
    with pytest.raises(ValueError, match=r"\[10001\] repeat"):
        Protocol(eval_seeds=(10_001, 10_002), selection_seeds=(10_001,))
    with pytest.raises(ValueError, match="single_seed"):
        Protocol(single_seed=-1)
    with pytest.raises(TypeError, match="eval_seeds must be a non-empty list"):
        Protocol(eval_seeds="10001")
    with pytest.raises(TypeError, match="selection_seeds must be an integer, got str '20001'"):
        Protocol(selection_seeds=("20001",))
    with pytest.raises(ValueError, match="eval_seeds must be an integer >= 10000, got 3"):  # a training seed
        Protocol(eval_seeds=(3,))
    with pytest.raises(ValueError, match="num must be an integer >= 1, got 0"):
        Protocol(num=0)


def _chunk_keys(seed: int, num: int) -> set:
    k = jax.random.key(seed)
    return {tuple(np.asarray(jax.random.key_data(jax.random.fold_in(k, i))).tolist()) for i in range(-(-num // metrics.EVAL_CHUNK))}


def test_evaluation_selection_and_training_keys_never_coincide():
    p = Protocol()
    evals = set().union(*(_chunk_keys(s, p.num) for s in p.eval_seeds))
    selection = set().union(*(_chunk_keys(s, p.selection_num) for s in p.selection_seeds))
    single = _chunk_keys(p.single_seed, p.num)
    assert len(evals) == len(p.eval_seeds) * 10 and len(selection) == len(p.selection_seeds) * 2
    training = set()
    for s in [*range(7), *(s + k * START_STRIDE for s in range(7) for k in range(1, 8))]:  # seeds and candidates
        k = jax.random.key(s)
        for stream in (0, 1, _VALIDATION_STREAM, _SELECTION_STREAM):  # init, data, the two held-out streams of lintx.selection
            training.add(tuple(np.asarray(jax.random.key_data(jax.random.fold_in(k, stream))).tolist()))
    assert not evals & selection and not evals & single and not selection & single
    assert not (evals | selection | single) & training


def _fake_sets(monkeypatch, losses: dict):
    """``evaluate_checkpoint`` replaced: path ``p`` on set ``s`` has adjusted loss ``losses[p][s]``."""
    def fake(data_dir, path, eval_seed, num, noise=None):
        v = losses[path][eval_seed]
        return {"adjusted_loss": [v], "adjusted_stderr": [0.01], "worst_share": [0.1], "max_sequence": [10 * v]}
    monkeypatch.setattr(evaluation, "evaluate_checkpoint", fake)


def test_the_seed_chosen_is_the_best_on_the_selection_sets_not_on_the_evaluation_sets(monkeypatch):
    p = Protocol(eval_seeds=(10_001, 10_002, 10_003), selection_seeds=(20_001, 20_002, 20_003))
    # seed 0 is better on the selection sets, seed 1 on every evaluation set
    a = {10_001: 0.5, 10_002: 0.7, 10_003: 0.6, 20_001: 0.1, 20_002: 0.2, 20_003: 9.0, 2024: 0.55}
    b = {10_001: 0.2, 10_002: 0.3, 10_003: 0.1, 20_001: 0.3, 20_002: 0.3, 20_003: 0.3, 2024: 0.25}
    _fake_sets(monkeypatch, {"a": a, "b": b})
    found = [(0, "a"), (1, "b")]
    assert evaluation.choose(None, found, p) == (0, "a")
    cell = table1.model_cell(None, found, p)
    assert cell["best_seed"] == 0 and (cell["median"], cell["min"], cell["max"], cell["single"]) == (0.6, 0.5, 0.7, 0.55)
    assert cell["seed_medians"] == [0.6, 0.2] and cell["seed0_median"] == 0.6


def test_median_and_spread_are_over_the_sets_given(monkeypatch):
    a = {10_001: 1.0, 10_002: 100.0, 10_003: 2.0, 10_004: 3.0, 10_005: 4.0, 10_006: -50.0, 20_001: 0.0, 2024: 0.0}
    _fake_sets(monkeypatch, {"a": a})
    five = table1.model_cell(None, [(0, "a")], Protocol(selection_seeds=(20_001,)))
    assert (five["median"], five["min"], five["max"]) == (3.0, 1.0, 100.0)
    three = table1.model_cell(None, [(0, "a")], Protocol(eval_seeds=(10_001, 10_003, 10_006), selection_seeds=(20_001,)))
    assert (three["median"], three["min"], three["max"]) == (1.0, -50.0, 2.0)
    assert evaluation.spread([[1.0, 5.0], [3.0, 2.0], [2.0, 9.0]])["median"].tolist() == [2.0, 5.0]


def test_tail_statistics_count_the_worst_sequences_across_chunks(monkeypatch):
    """One sequence in 25,000 carries most of the loss: ``worst_share`` and ``max_sequence`` find it, whichever
    chunk it is in."""
    monkeypatch.setattr(metrics, "EVAL_CHUNK", 10_000)
    def chunk(key):
        err = np.full(10_000, 0.01)
        err[7] = 1000.0 if chunk.calls == 1 else 0.01
        chunk.calls += 1
        return err, np.zeros(10_000)
    chunk.calls = 0
    r = metrics._accumulate(chunk, jax.random.key(0), 25_000)
    total = 1000.0 + (25_000 - 1) * 0.01
    assert r["max_sequence"] == 1000.0
    assert r["worst_share"] == pytest.approx((1000.0 + 9 * 0.01) / total)
    assert r["adjusted_loss"] == pytest.approx(total / 25_000)


def test_a_damaged_evaluation_entry_is_an_error_naming_it(tmp_path):
    evaluation.cached(tmp_path, {"k": 1}, lambda: {"x": 1})
    (entry,) = tmp_path.glob("*.json")
    entry.write_text(entry.read_text()[:10])
    with pytest.raises(ValueError, match=entry.name):
        evaluation.cached(tmp_path, {"k": 1}, lambda: {"x": 2})


def test_filling_the_cache_for_many_checkpoints_stores_what_each_alone_computes(tmp_path):
    """``fill`` draws each set once per noise setting for all checkpoints; the cached values equal
    ``evaluate_checkpoint`` computed afresh, and a second fill computes nothing."""
    from lintx.fit import checkpoints
    from lintx.model import ModelConfig
    from lintx.tasks import Categorical, Uniform

    paths = [checkpoints(tmp_path / "a", "tiny", ModelConfig(v, L), noise, [0], True)[0][1]
             for v, L, noise in [("diag", 1, Uniform(1.0)), ("gdpp", 2, Uniform(1.0)), ("diag", 1, Categorical((1.0, 3.0)))]]
    sets = [(10_001, 3_000), (20_001, 1_000)]
    assert evaluation.fill(tmp_path / "a", paths, sets) == len(paths) * len(sets)
    assert evaluation.fill(tmp_path / "a", paths, sets) == 0
    for p in paths:
        for seed, num in sets:
            filled = evaluation.evaluate_checkpoint(tmp_path / "a", p, seed, num)
            assert filled == evaluation.evaluate_checkpoint(tmp_path / "fresh", p, seed, num)
