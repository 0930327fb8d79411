"""Walking the method's plan (lintx.fit): parents first, every start trained together, the best on the
seed's selection sequences kept, a diverged training retried then refused or replaced by its best start."""

import dataclasses
import json

import jax
import numpy as np
import pytest

import lintx.fit as fit
import lintx.selection as selection
import lintx.method as method
import lintx.store as store
from lintx.checkpoint import DivergedError, from_training, load
from lintx.method import Budget, Profile
from lintx.model import Model, ModelConfig
from lintx.tasks import Categorical, Uniform
from lintx.train import train

TINY = Budget(steps=10, batch=32, chunk=10)


def _use(monkeypatch, budget: Budget) -> Profile:
    prof = Profile("tiny", budget, 1, "test profile", validation_num=2_000)
    monkeypatch.setitem(method.PROFILES, "tiny", prof)
    return prof


def test_every_start_trains_together_and_the_checkpoint_is_never_worse_on_selection_than_what_it_grew_from_or_contains(
        tmp_path, monkeypatch, count_training):
    """A FULL model is grown from its shallower version and embedded from the DIAG model of its depth, both
    trained together (one vmapped call) after the models they come from; the untrained starts compete, so
    on the seed's selection sequences the checkpoint is at least as good as the shallower FULL model and
    the DIAG model it contains. Both parents are part of its key."""
    prof = _use(monkeypatch, TINY)
    noise = Uniform(1.0)
    full2 = fit.get_or_train(tmp_path, "tiny", ModelConfig("full", 2), noise, 0)
    assert [(v, L, len(s)) for v, L, _, s in count_training] == [
        ("gdpp", 1, 1), ("diag", 1, 1), ("full", 1, 1), ("gdpp", 2, 1), ("diag", 2, 2), ("full", 2, 2)]
    assert count_training[-1][3] == (0, 1_000_000)
    found = lambda v, L: load(store.checkpoint_path(tmp_path, "tiny", ModelConfig(v, L), noise, 0))
    sel = lambda ck: selection.selection_loss(ck.model, noise, 0)
    mine = sel(full2)
    assert mine <= min(full2.meta["start_losses"]) * (1 + 1e-6)
    assert mine <= sel(found("full", 1)) * (1 + 1e-3) + 1e-4  # the grown start: the 1-layer model plus a layer near 0
    assert mine <= sel(found("diag", 2)) * (1 + 1e-5)  # the embedded start computes the DIAG model exactly
    assert full2.meta["grown_from"] == store.checkpoint_path(tmp_path, "tiny", ModelConfig("full", 1), noise, 0).name
    assert full2.meta["embedded_from"] == store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 2), noise, 0).name
    fit.get_or_train(tmp_path, "tiny", ModelConfig("full", 2), noise, 0)
    assert len(count_training) == 6  # nothing retrained
    # the key holds the parents: another budget of the chain renames the child
    other = dataclasses.replace(prof, budget=dataclasses.replace(TINY, warm_starts=False))
    assert store.checkpoint_path(tmp_path, other, ModelConfig("full", 2), noise, 0) != store.checkpoint_path(tmp_path, prof, ModelConfig("full", 2), noise, 0)


def test_random_starts_train_beside_the_warm_ones_and_the_best_on_selection_sequences_is_kept(tmp_path, monkeypatch, count_training):
    """``Budget.random_starts`` adds random initialisations beside a model's warm starts, in the same run; the
    candidate with the lowest selection loss is kept and recorded; the number of starts is keyed."""
    cfg, noise = ModelConfig("gdpp", 2), Uniform(1.0)
    _use(monkeypatch, TINY)
    single = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 4)
    prof = _use(monkeypatch, dataclasses.replace(TINY, random_starts=2))
    assert store.checkpoint_path(tmp_path, "tiny", cfg, noise, 4) != single
    ckpt = fit.get_or_train(tmp_path, "tiny", cfg, noise, 4)
    starts = fit.start_seeds(4, 3)
    assert count_training == [("gdpp", 1, "u1", fit.start_seeds(4, 2)), ("gdpp", 2, "u1", starts)] and len(set(starts)) == 3
    losses = ckpt.meta["selection_losses"]
    assert len(losses) == 3 and ckpt.meta["start"] == int(np.argmin(losses)) and ckpt.meta["start_seed"] == starts[ckpt.meta["start"]]
    # the kept candidate is the one the loss names: retrain the candidates and compare
    parent = load(store.checkpoint_path(tmp_path, "tiny", ModelConfig("gdpp", 1), noise, 4))
    tc = method.recipe(prof.budget, cfg, noise)
    init = [fit.warm_start(cfg, noise, parent, 4, tc), *(fit.random_init(cfg, noise, tc, s) for s in starts[1:])]
    res = train(cfg, noise, tc, starts, init=init)
    again = fit.selection_losses(cfg, noise, 4, res)
    np.testing.assert_allclose(again, losses, rtol=1e-4)
    if "kept_start" not in ckpt.meta:
        np.testing.assert_allclose(from_training(cfg, noise, tc, res, int(np.argmin(again))).P, ckpt.P, atol=1e-5)


def test_the_best_warm_start_is_kept_when_every_training_diverges(tmp_path, monkeypatch):
    """A model whose candidates diverge after every retry is its best warm start (the grown shallower model or
    the embedded simpler one), with the reason in its sidecar, never a failure that takes every deeper
    model down with it."""
    prof = _use(monkeypatch, TINY)
    noise, real = Uniform(1.0), fit.train

    def diverging(cfg, noise, tc, seeds, callback=None, init=None):
        result = real(cfg, noise, tc, seeds, callback, init)
        return result._replace(diverged=np.full(len(seeds), cfg.layers == 2 and cfg.variant == "diag"))

    monkeypatch.setattr(fit, "train", diverging)
    ck = fit.get_or_train(tmp_path, "tiny", ModelConfig("diag", 2), noise, 0)
    assert ck.meta["retries"] == method.MAX_RETRIES and "every candidate diverged" in ck.meta["trained"]
    tc = method.recipe(prof.budget, ModelConfig("diag", 2), noise)
    starts = [fit.warm_start(ModelConfig("diag", 2), noise, load(store.checkpoint_path(tmp_path, "tiny", c, noise, 0)), 0, tc)
              for c in (ModelConfig("diag", 1), ModelConfig("gdpp", 2))]
    np.testing.assert_array_equal(ck.model.params["p"], starts[ck.meta["kept_start"]]["p"])
    assert ck.meta["final_loss"] == min(ck.meta["start_losses"])
    deeper = fit.get_or_train(tmp_path, "tiny", ModelConfig("full", 3), noise, 0)  # trains on from it
    assert deeper.meta["embedded_from"] == store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 3), noise, 0).name


def test_diverged_without_a_warm_start_is_retried_then_refused_and_recorded(tmp_path, monkeypatch):
    _use(monkeypatch, Budget(steps=30, batch=128, lr=30.0, clip=0.0, normalise=False, schedule="constant", chunk=10, warm_starts=False))
    lrs, real = [], fit.train
    monkeypatch.setattr(fit, "train", lambda cfg, noise, tc, seeds, callback=None, init=None: (lrs.append(tc.lr), real(cfg, noise, tc, seeds, init=init))[1])
    cfg, noise = ModelConfig("full", 3), Uniform(5.0)
    with pytest.raises(DivergedError):
        fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert lrs == pytest.approx([30.0, 10.0, 10.0 / 3])
    path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    assert not path.exists()
    # the failure is recorded: asked again, it is reported at once, not retrained
    assert json.loads(store.failure_path(path).read_text())["retries"] == 2
    with pytest.raises(DivergedError, match="delete it to retrain"):
        fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert len(lrs) == 3
    assert fit.checkpoints(tmp_path, "tiny", cfg, noise, [0]) == []  # and a report leaves it out instead of failing


def test_retry_that_succeeds_is_recorded(tmp_path, monkeypatch):
    _use(monkeypatch, dataclasses.replace(TINY, warm_starts=False))
    real, tries = fit.train, []

    def flaky(cfg, noise, tc, seeds, callback=None, init=None):
        r = real(cfg, noise, tc, seeds, init=init)
        tries.append(tc.lr)
        return r._replace(diverged=np.array([len(tries) == 1]))

    monkeypatch.setattr(fit, "train", flaky)
    ck = fit.get_or_train(tmp_path, "tiny", ModelConfig("diag", 1), Uniform(1.0), 0)
    assert ck.meta["retries"] == 1 and ck.meta["train"]["lr"] == pytest.approx(tries[0] / 3)


def test_a_model_whose_parent_diverged_is_reported_with_that_record_and_not_trained(tmp_path, monkeypatch, count_training):
    _use(monkeypatch, TINY)
    noise = Uniform(1.0)
    root = store.checkpoint_path(tmp_path, "tiny", ModelConfig("gdpp", 1), noise, 0)
    root.parent.mkdir(parents=True)
    store.failure_path(root).write_text(json.dumps({"error": "diverged in a test"}))
    assert fit.recorded_failure(tmp_path, "tiny", ModelConfig("diag", 3), noise, 0) == store.failure_path(root)
    assert fit.recorded_failure(tmp_path, "tiny", ModelConfig("diag", 3), noise, 1) is None
    with pytest.raises(DivergedError, match="diverged in a test"):
        fit.get_or_train(tmp_path, "tiny", ModelConfig("diag", 3), noise, 0)
    assert count_training == [] and fit.checkpoints(tmp_path, "tiny", ModelConfig("diag", 3), noise, [0]) == []
    assert count_training == []


def test_model_that_explodes_on_held_out_sequences_is_retried_then_refused(tmp_path, monkeypatch):
    """A finite training loss is not enough: a model whose loss on fresh sequences is far above it (it explodes
    on rare sequences) counts as diverged, is retried at a lower learning rate, and is never saved."""
    _use(monkeypatch, dataclasses.replace(TINY, warm_starts=False))
    calls = []
    monkeypatch.setattr(fit, "held_out_loss", lambda ckpt, num: (calls.append(num), 1e4 * ckpt.meta["final_loss"])[1])
    cfg, noise = ModelConfig("diag", 2), Uniform(1.0)
    with pytest.raises(DivergedError, match="held-out loss"):
        fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert calls == [2_000] * 3
    path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    assert not path.exists()
    record = json.loads(store.failure_path(path).read_text())
    assert record["retries"] == 2 and record["validation_loss"] > 1e3 * record["final_loss"]


def test_saved_model_records_its_held_out_loss(tmp_path, monkeypatch):
    _use(monkeypatch, TINY)
    ck = fit.get_or_train(tmp_path, "tiny", ModelConfig("diag", 1), Uniform(1.0), 3)
    assert ck.meta["validation_num"] == 2_000
    assert np.isfinite(ck.meta["validation_loss"])
    assert ck.meta["validation_loss"] <= method.VALIDATION_FACTOR * ck.meta["final_loss"] + method.VALIDATION_SLACK
    # the check itself: far above the training loss, or not finite, is a problem; close to it is not
    assert selection.held_out_problem(ck, ck.meta["final_loss"]) is None
    assert "explodes" in selection.held_out_problem(ck, 10 * ck.meta["final_loss"] + 1)
    assert "explodes" in selection.held_out_problem(ck, float("nan"))


def test_held_out_and_selection_sequences_do_not_depend_on_64_bit_jax(tmp_path, monkeypatch):
    """The held-out check and the choice among candidates see the same sequences whether or not the process
    has 64-bit JAX on (the samplers draw other sigmas with it on), and training is float32 either way."""
    import jax

    _use(monkeypatch, dataclasses.replace(TINY, warm_starts=False))
    ck = fit.get_or_train(tmp_path, "tiny", ModelConfig("diag", 1), Categorical((1.0, 3.0, 5.0)), 0)
    plain = selection.held_out_loss(ck, 2_000), selection.selection_loss(ck.model, ck.noise, 0)
    with jax.enable_x64(True):
        assert (selection.held_out_loss(ck, 2_000), selection.selection_loss(ck.model, ck.noise, 0)) == plain
        again = fit.get_or_train(tmp_path / "x64", "tiny", ModelConfig("diag", 1), Categorical((1.0, 3.0, 5.0)), 0)
    assert again.P.dtype == np.float32
    np.testing.assert_array_equal(again.P, ck.P)


def test_a_wsd_budget_looks_at_each_cooled_copy_on_the_selection_sequences_and_keeps_the_lowest(tmp_path, monkeypatch):
    """Under the wsd schedule a model's candidates are judged by the selection loss of their cooled copies:
    the sidecar's looks are those losses, the kept candidate's selection loss is the lowest of its looks, and
    its steps are those that made the kept copy."""
    _use(monkeypatch, Budget(steps=80, batch=32, chunk=10, schedule="wsd", phase=20, cooldown=10, plateau=0.02))
    noise = Uniform(1.0)
    ck = fit.get_or_train(tmp_path, "tiny", ModelConfig("diag", 2), noise, 0)
    looks = ck.meta["looks"]
    assert 1 <= len(looks) <= 3 and ck.meta["steps"] in (30, 60, 120)
    assert ck.meta["trained_selection_loss"] == pytest.approx(min(x for x in looks if x is not None), rel=1e-6)
    assert selection.selection_score(ck.model, noise, 0) == pytest.approx(min(ck.meta["trained_selection_loss"], *ck.meta["start_losses"]), rel=1e-5)
    key = method.key(method.get_profile("tiny"), ModelConfig("diag", 2), noise, 0)
    assert key["train"]["schedule"] == "wsd" and key["wsd"]["plateau"] == 0.02 and key["wsd"]["blocks"] == method.SELECTION_BLOCKS


def test_a_wsd_model_whose_every_candidate_diverged_keeps_a_start_scored_once(tmp_path, monkeypatch):
    """Where every training diverges under the wsd schedule, the starts' selection scores, computed before
    training to judge the looks, choose the start kept: no start is scored again."""
    _use(monkeypatch, Budget(steps=40, batch=32, chunk=10, schedule="wsd", phase=20, cooldown=10, plateau=0.02))
    noise, real, calls = Uniform(1.0), fit.train, []

    def diverging(cfg, noise, tc, seeds, callback=None, init=None, **wsd):
        result = real(cfg, noise, tc, seeds, callback, init, **wsd)
        return result._replace(diverged=np.full(len(seeds), cfg.layers == 2 and cfg.variant == "diag"))

    def counted(model, noise, seed):
        calls.append(model.cfg)
        return selection.selection_score(model, noise, seed)

    monkeypatch.setattr(fit, "train", diverging)
    monkeypatch.setattr(fit, "scorer", lambda prof: counted)
    ck = fit.get_or_train(tmp_path, "tiny", ModelConfig("diag", 2), noise, 0)
    assert "every candidate diverged" in ck.meta["trained"] and calls == []
    tc = method.recipe(method.get_profile("tiny").budget, ModelConfig("diag", 2), noise)
    starts = [fit.warm_start(ModelConfig("diag", 2), noise, load(store.checkpoint_path(tmp_path, "tiny", c, noise, 0)), 0, tc)
              for c in (ModelConfig("diag", 1), ModelConfig("gdpp", 2))]
    expected = [selection.selection_score(Model(ModelConfig("diag", 2), p), noise, 0) for p in starts]
    assert ck.meta["start_losses"] == pytest.approx(expected, rel=1e-5) and ck.meta["kept_start"] == int(np.argmin(expected))
