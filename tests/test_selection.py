"""The sequences that check and choose a seed's models (lintx.selection): the wsd score is the adjusted loss
over every selection sequence, tails included, and a stack of candidates scores as each alone."""

import jax
import numpy as np
import pytest

import lintx.method as method
import lintx.selection as selection
from lintx.model import Model, ModelConfig
from lintx.tasks import Categorical, Uniform


def test_the_wsd_score_is_the_adjusted_selection_loss_over_every_block_tails_included(monkeypatch):
    """The score is the loss above the oracle's (so a trained model is scored near its adjusted loss, far
    below its raw loss at high noise), over every selection sequence: one block that explodes raises it, as
    one sequence in 100,000 raises a set of Table 1; a block that is not finite makes it inf."""
    noise = Uniform(4.0)
    m = Model(ModelConfig("gdpp", 1), {"p": np.zeros((1, 1, 2), np.float32), "q": np.zeros((1, 1, 1), np.float32)})  # predicts 0
    score, raw = selection.selection_score(m, noise, 0), selection.selection_loss(m, noise, 0)
    assert 0 < score < raw - 1.0  # the oracle's loss on the same sequences (above 1 at sigma_max = 4) is taken off
    key = jax.random.fold_in(jax.random.key(0), selection._SELECTION_STREAM)
    per_block = [float(selection.evaluate(m, noise, jax.random.fold_in(key, b), method.SELECTION_NUM // method.SELECTION_BLOCKS, 10, 20)["adjusted_loss"][-1])
                 for b in range(method.SELECTION_BLOCKS)]
    assert score == pytest.approx(np.mean(per_block), rel=1e-6)  # drawn once, the same sequences as evaluate's
    calls = []
    real = selection.evaluate_drawn

    def one_block_explodes(models, chunks):
        calls.append(len(models))
        out = real(models, chunks)
        return [{**o, "adjusted_loss": o["adjusted_loss"] * (1e6 if len(calls) == 2 else 1.0)} for o in out]

    monkeypatch.setattr(selection, "evaluate_drawn", one_block_explodes)
    exploded = selection.selection_score(m, noise, 0)
    assert exploded == pytest.approx(score + (1e6 - 1) * per_block[1] / method.SELECTION_BLOCKS, rel=1e-5) and calls == [1] * method.SELECTION_BLOCKS
    monkeypatch.setattr(selection, "evaluate_drawn", lambda models, chunks: [{**o, "adjusted_loss": np.array([np.nan])} for o in real(models, chunks)])
    assert selection.selection_score(m, noise, 0) == np.inf


def test_a_stack_of_candidates_scores_as_each_alone_and_only_the_wsd_schedule_scores_by_the_adjusted_loss():
    noise, cfg = Categorical((1.0, 3.0)), ModelConfig("diag", 2, d=5, n=10)
    rng = np.random.default_rng(0)
    params = [{"p": rng.normal(0, 0.1, (2, 1, 2)).astype(np.float32), "q": rng.normal(0, 0.02, (2, 1, 2)).astype(np.float32)} for _ in range(3)]
    blocks = selection.selection_blocks(noise, 3, cfg.d, cfg.n)
    stacked = selection.stack_scores(cfg, blocks, {k: np.stack([p[k] for p in params]) for k in params[0]})
    alone = [selection.selection_score(Model(cfg, p), noise, 3) for p in params]
    np.testing.assert_allclose(stacked, alone, rtol=1e-6)
    assert selection.scorer(method.get_profile("brisk")) is selection.selection_score
    assert selection.scorer(method.get_profile("paper")) is selection.selection_loss
