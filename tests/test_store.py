"""The checkpoint cache and the grid runner: resumable, never retraining a finished model, never saving a
diverged one."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import lintx.report as report
import lintx.store as store
from lintx import evaluation, profiles
from lintx.__main__ import main
from lintx.checkpoint import CheckpointError, DivergedError, from_training, load
from lintx.model import ModelConfig
from lintx.profiles import Profile
from lintx.reference import COLUMNS
from lintx.refine import RefineConfig
from lintx.tasks import Categorical, Uniform
from lintx.train import TrainConfig, train


@pytest.fixture
def tiny(monkeypatch):
    prof = Profile("tiny", lambda cfg, noise: TrainConfig(steps=10, batch=32, chunk=10), 1, "test profile", validation_num=2_000)
    monkeypatch.setitem(profiles.PROFILES, "tiny", prof)
    return prof


@pytest.fixture
def count_training(monkeypatch):
    calls = []

    def counting(cfg, noise, tc, seeds, callback=None, init=None):
        calls.append((cfg.variant, cfg.layers, noise.label, seeds))
        return train(cfg, noise, tc, seeds, callback, init)

    monkeypatch.setattr(store, "train", counting)
    return calls


def test_finished_model_is_not_retrained(tmp_path, tiny, count_training):
    cfg, noise = ModelConfig("diag", 1), Uniform(1.0)
    a = store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    b = store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert len(count_training) == 1
    np.testing.assert_array_equal(a.P, b.P)


def test_changed_numerics_or_recipe_trains_anew_and_keeps_the_old(tmp_path, tiny, count_training, monkeypatch):
    cfg, noise = ModelConfig("diag", 1), Uniform(1.0)
    old = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    monkeypatch.setattr(store, "NUMERICS", store.NUMERICS + 1)
    new = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    assert new != old
    store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert len(count_training) == 2 and old.exists() and new.exists()
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", lambda c, n: TrainConfig(steps=12, batch=32), 1, "", validation_num=2_000))
    assert store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0) not in (old, new)


def test_acceptance_policy_is_part_of_the_key(tmp_path, monkeypatch):
    """The retry ladder and the held-out check pick which training is saved: changing them is a new key."""
    cfg, noise = ModelConfig("diag", 2), Uniform(5.0)
    assert store.acceptance(profiles.get_profile("fast")) == store.ACCEPTANCE_V1  # shipped names left as they were
    shipped = store.checkpoint_path(tmp_path, "fast", cfg, noise, 0)
    seen = {shipped}
    for name, value in [("MAX_RETRIES", 3), ("RETRY_LR_DIVISOR", 10), ("VALIDATION_FACTOR", 2.0), ("VALIDATION_SLACK", 0.0)]:
        with monkeypatch.context() as m:
            m.setattr(store, name, value)
            path = store.checkpoint_path(tmp_path, "fast", cfg, noise, 0)
        assert path not in seen, name
        seen.add(path)
    fewer = dataclasses.replace(profiles.get_profile("fast"), validation_num=1_000)
    assert store.checkpoint_path(tmp_path, fewer, cfg, noise, 0) not in seen
    assert store.checkpoint_path(tmp_path, "fast", cfg, noise, 0) == shipped


def test_corrupt_cached_checkpoint_is_an_error_not_a_retrain(tmp_path, tiny, count_training):
    cfg, noise = ModelConfig("gdpp", 1), Uniform(1.0)
    store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match=path.name):
        store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert len(count_training) == 1


def test_diverged_is_retried_then_refused(tmp_path, monkeypatch):
    bad = TrainConfig(steps=30, batch=128, lr=30.0, clip=0.0, normalise=False, schedule="constant", chunk=10)
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", lambda c, n: bad, 1, "", validation_num=2_000))
    lrs = []
    real = store.train
    monkeypatch.setattr(store, "train", lambda cfg, noise, tc, seeds, callback=None, init=None: (lrs.append(tc.lr), real(cfg, noise, tc, seeds, init=init))[1])
    cfg, noise = ModelConfig("full", 3), Uniform(5.0)
    with pytest.raises(DivergedError):
        store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert lrs == pytest.approx([30.0, 10.0, 10.0 / 3])
    path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    assert not path.exists()
    # the failure is recorded: asked again, it is reported at once, not retrained
    assert json.loads(store.failure_path(path).read_text())["retries"] == 2
    with pytest.raises(DivergedError, match="delete it to retrain"):
        store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert len(lrs) == 3
    # and a report leaves it out instead of failing
    from lintx import report
    assert store.checkpoints(tmp_path, "tiny", cfg, noise, [0]) == []


def test_retry_that_succeeds_is_recorded(tmp_path, tiny, monkeypatch):
    real, tries = store.train, []

    def flaky(cfg, noise, tc, seeds, callback=None, init=None):
        r = real(cfg, noise, tc, seeds, init=init)
        tries.append(tc.lr)
        return r._replace(diverged=np.array([len(tries) == 1]))

    monkeypatch.setattr(store, "train", flaky)
    ck = store.get_or_train(tmp_path, "tiny", ModelConfig("diag", 1), Uniform(1.0), 0)
    assert ck.meta["retries"] == 1 and ck.meta["train"]["lr"] == pytest.approx(tries[0] / 3)


def test_grid_runner_resumes_after_interruption(tmp_path, tiny, monkeypatch, capsys):
    real, calls = store.train, []

    def interrupted(cfg, noise, tc, seeds, callback=None, init=None):
        calls.append(cfg.layers)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cfg, noise, tc, seeds, init=init)

    monkeypatch.setattr(store, "train", interrupted)
    argv = ["train", "--profile", "tiny", "--data", str(tmp_path), "--columns", "u1", "--depths", "1-3", "--variants", "diag", "--no-deep-u5"]
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    assert len(list((tmp_path / "tiny").glob("*.npz"))) == 1
    calls.clear()
    monkeypatch.setattr(store, "train", lambda cfg, noise, tc, seeds, callback=None, init=None: (calls.append(cfg.layers), real(cfg, noise, tc, seeds, init=init))[1])
    assert main(argv) == 0
    assert calls == [2, 3], "only the models not finished before the interruption are trained"
    assert len(list((tmp_path / "tiny").glob("*.npz"))) == 3
    log = [json.loads(line) for line in (tmp_path / "tiny" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 3 and all(r["seconds"] > 0 for r in log)


def test_grid_runner_keeps_a_noise_setting_in_one_worker_depth_by_depth_with_the_seeds_of_a_model_in_a_row():
    """Shards: every model of a noise setting in one worker (its warm starts' parents are trained there),
    parents before children, and the seeds of a model one after the other (they share its compiled step);
    with fewer noise settings than workers, a noise setting and seed is the unit."""
    import argparse

    from lintx.__main__ import _jobs, _shard

    args = argparse.Namespace(profile="grow", seeds=[0, 1], depths=[1, 2], columns=["u1", "c13", "u3"],
                              variants=("gdpp", "diag", "full"), deep_u5=False, d=10, n=20)
    _, jobs = _jobs(args)
    shards = [_shard(jobs, i, 2) for i in range(2)]
    assert sorted(map(str, sum(shards, []))) == sorted(map(str, jobs))
    assert [{n.label for _, n, _ in s} for s in shards] == [{"c13", "u3"}, {"u1"}]
    first = [(c.variant, c.layers, s) for c, n, s in shards[0] if n.label == "c13"]
    assert first == [(v, L, s) for L in (1, 2) for v in ("gdpp", "diag", "full") for s in (0, 1)]
    one = argparse.Namespace(**{**vars(args), "columns": ["u1"]})
    _, jobs = _jobs(one)
    assert [{s for _, _, s in _shard(jobs, i, 2)} for i in range(2)] == [{0}, {1}]


def test_seed_must_be_an_integer():
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got '0'"):
        store.checkpoint_path("data", "fast", ModelConfig("diag", 1), Uniform(1.0), "0")


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown training profile 'fastest'"):
        store.checkpoint_path("data", "fastest", ModelConfig("diag", 1), Uniform(1.0), 0)


def test_growing_profile_trains_the_shallower_model_first_and_keys_on_it(tmp_path, monkeypatch, count_training):
    shallower = lambda cfg, noise: dataclasses.replace(cfg, layers=cfg.layers - 1) if cfg.layers > 1 else None
    prof = Profile("tiny", lambda cfg, noise: TrainConfig(steps=10, batch=32, chunk=10), 1, "test profile", start_from=shallower, validation_num=2_000)
    monkeypatch.setitem(profiles.PROFILES, "tiny", prof)
    noise = Uniform(1.0)
    deep = store.get_or_train(tmp_path, "tiny", ModelConfig("diag", 3), noise, 0)
    assert [c[1] for c in count_training] == [1, 2, 3]  # the chain, shallow first
    shallow = store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 2), noise, 0)
    assert deep.meta["grown_from"] == shallow.name
    np.testing.assert_array_equal(deep.P[:2] != 0, store.load(shallow).P != 0)
    store.get_or_train(tmp_path, "tiny", ModelConfig("diag", 3), noise, 0)
    assert len(count_training) == 3  # nothing retrained
    # a changed recipe for the 1-layer model renames the whole chain
    before = store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 3), noise, 0)
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", lambda c, n: TrainConfig(steps=10 + (c.layers == 1), batch=32), 1, "", start_from=shallower, validation_num=2_000))
    assert store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 3), noise, 0) != before


def test_a_model_whose_parent_diverged_is_reported_with_that_record_and_not_trained(tmp_path, monkeypatch, count_training):
    shallower = lambda cfg, noise: dataclasses.replace(cfg, layers=cfg.layers - 1) if cfg.layers > 1 else None
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", lambda c, n: TrainConfig(steps=10, batch=32, chunk=10), 1, "", start_from=shallower, validation_num=2_000))
    noise = Uniform(1.0)
    parent = store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 1), noise, 0)
    parent.parent.mkdir(parents=True)
    store.failure_path(parent).write_text(json.dumps({"error": "diverged in a test"}))
    assert store.recorded_failure(tmp_path, "tiny", ModelConfig("diag", 3), noise, 0) == store.failure_path(parent)
    assert store.recorded_failure(tmp_path, "tiny", ModelConfig("diag", 3), noise, 1) is None
    with pytest.raises(DivergedError, match="diverged in a test"):
        store.get_or_train(tmp_path, "tiny", ModelConfig("diag", 3), noise, 0)
    assert count_training == [] and store.checkpoints(tmp_path, "tiny", ModelConfig("diag", 3), noise, [0]) == []
    assert count_training == []


def test_full_warm_started_from_diag_starts_as_that_model(tmp_path, monkeypatch, count_training):
    from_diag = lambda cfg, noise: dataclasses.replace(cfg, variant="diag") if cfg.variant == "full" else None
    prof = Profile("tiny", lambda cfg, noise: TrainConfig(steps=10, batch=32, chunk=10, lr=1e-9), 1, "", start_from=from_diag, validation_num=2_000)
    monkeypatch.setitem(profiles.PROFILES, "tiny", prof)
    full = store.get_or_train(tmp_path, "tiny", ModelConfig("full", 2), Uniform(1.0), 0)
    assert [c[:2] for c in count_training] == [("diag", 2), ("full", 2)]
    diag = store.load(tmp_path / "tiny" / full.meta["grown_from"])
    np.testing.assert_allclose(full.P, diag.P, atol=1e-6)  # lr ~ 0: the FULL model is still the DIAG one


def test_model_that_explodes_on_held_out_sequences_is_retried_then_refused(tmp_path, tiny, monkeypatch):
    """A finite training loss is not enough: a model whose loss on fresh sequences is far above it (it explodes
    on rare sequences) counts as diverged, is retried at a lower learning rate, and is never saved."""
    calls = []
    monkeypatch.setattr(store, "held_out_loss", lambda ckpt, num: (calls.append(num), 1e4 * ckpt.meta["final_loss"])[1])
    cfg, noise = ModelConfig("diag", 2), Uniform(1.0)
    with pytest.raises(DivergedError, match="held-out loss"):
        store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert calls == [2_000] * 3
    path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    assert not path.exists()
    record = json.loads(store.failure_path(path).read_text())
    assert record["retries"] == 2 and record["validation_loss"] > 1e3 * record["final_loss"]


def test_saved_model_records_its_held_out_loss(tmp_path, tiny):
    ck = store.get_or_train(tmp_path, "tiny", ModelConfig("diag", 1), Uniform(1.0), 3)
    assert ck.meta["validation_num"] == 2_000
    assert np.isfinite(ck.meta["validation_loss"])
    assert ck.meta["validation_loss"] <= store.VALIDATION_FACTOR * ck.meta["final_loss"] + store.VALIDATION_SLACK
    # the check itself: far above the training loss, or not finite, is a problem; close to it is not
    assert store.held_out_problem(ck, ck.meta["final_loss"]) is None
    assert "explodes" in store.held_out_problem(ck, 10 * ck.meta["final_loss"] + 1)
    assert "explodes" in store.held_out_problem(ck, float("nan"))


def test_check_command_finds_a_checkpoint_that_fails_the_held_out_check(tmp_path, tiny, monkeypatch, capsys):
    store.get_or_train(tmp_path, "tiny", ModelConfig("gdpp", 1), Uniform(1.0), 0)
    assert main(["check", "--profile", "tiny", "--data", str(tmp_path)]) == 0
    assert "0 of 1 checkpoints" in capsys.readouterr().out  # checked when it was trained
    assert main(["check", "--profile", "tiny", "--data", str(tmp_path), "--all"]) == 0
    monkeypatch.setattr(store, "held_out_loss", lambda ckpt, num: float("inf"))
    assert main(["check", "--profile", "tiny", "--data", str(tmp_path), "--all"]) == 1
    out = capsys.readouterr().out
    assert "FAILED gdpp-L1-H1-u1-s0-" in out and "1 failed" in out


def test_grid_runner_spreads_models_over_local_devices(tmp_path):
    """With two CPU devices, the runner trains on both (one thread each), and every checkpoint equals the
    one a single device trains: where a model was trained does not change it."""
    import os
    import subprocess
    import sys

    from lintx.checkpoint import load

    argv = ["train", "--profile", "tiny", "--columns", "u1", "--depths", "1-2", "--variants", "diag", "--seeds", "0", "1", "--no-deep-u5"]
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2"}
    subprocess.run([sys.executable, "-m", "lintx", *argv, "--data", str(tmp_path / "two")], env=env, check=True, capture_output=True)
    log = [json.loads(line) for line in (tmp_path / "two" / "tiny" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 4 and {r["device"] for r in log} == {"cpu:0", "cpu:1"}
    assert main([*argv, "--data", str(tmp_path / "one")]) == 0
    one = sorted((tmp_path / "one" / "tiny").glob("*.npz"))
    two = sorted((tmp_path / "two" / "tiny").glob("*.npz"))
    assert [p.name for p in one] == [p.name for p in two] and len(one) == 4
    for a, b in zip(one, two):
        np.testing.assert_array_equal(load(a).P, load(b).P)
        np.testing.assert_array_equal(load(a).Q, load(b).Q)


def test_grid_runner_reports_an_earlier_divergence_without_failing(tmp_path, tiny, count_training, capsys):
    """A failure recorded by an earlier run is named and skipped, not retried, and is not this run's failure
    (``make figures`` runs the grid before the notebooks and must not stop on it)."""
    cfg, noise = ModelConfig("diag", 2), Uniform(1.0)
    path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    path.parent.mkdir(parents=True)
    store.failure_path(path).write_text('{"error": "earlier run"}')
    argv = ["train", "--profile", "tiny", "--data", str(tmp_path), "--columns", "u1", "--depths", "1-2", "--variants", "diag", "--no-deep-u5"]
    assert main(argv) == 0
    assert count_training == [("diag", 1, "u1", (0,))]
    assert f"{path.name} not trained: {store.failure_path(path).name} diverged after every retry in an earlier run" in capsys.readouterr().out


def test_grid_runner_rejects_bad_worker_and_device_counts(capsys):
    for bad in (["--workers", "0"], ["--devices", "-1"]):
        with pytest.raises(SystemExit):
            main(["train", "--profile", "tiny", *bad])
        assert "--workers must be >= 1 and --devices >= 0" in capsys.readouterr().err


def test_grid_runner_diverged_ok_records_and_goes_on(tmp_path, monkeypatch, capsys):
    """A model that diverges in this run fails the runner (exit 1), unless --diverged-ok (make figures):
    then it is recorded and reported, and the rest of the grid is trained."""
    bad = TrainConfig(steps=20, batch=64, lr=30.0, clip=0.0, normalise=False, schedule="constant", chunk=10)
    good = TrainConfig(steps=10, batch=32, chunk=10)
    recipe = lambda cfg, noise: bad if cfg.variant == "full" else good
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", recipe, 1, "", validation_num=2_000))
    argv = ["train", "--profile", "tiny", "--data", str(tmp_path), "--columns", "u5", "--depths", "3", "--variants", "diag", "full", "--no-deep-u5"]
    assert main(argv) == 1
    store.failure_path(store.checkpoint_path(tmp_path, "tiny", ModelConfig("full", 3), Uniform(5.0), 0)).unlink()
    assert main([*argv, "--diverged-ok"]) == 0
    assert "1 model(s) diverged after every retry and were not saved: full L3 u5 seed 0" in capsys.readouterr().out
    assert len(list((tmp_path / "tiny").glob("*.npz"))) == 1 and len(list((tmp_path / "tiny").glob("*.diverged.json"))) == 1


def test_shipped_fast_cache_holds_only_current_checkpoints():
    """Every file in ``data/fast`` is the current name of a model (a changed recipe leaves the old file
    behind: ``python -m lintx prune --delete`` must remove it, not ship it beside the new one), every
    checkpoint loads and verifies, and no evaluation in ``data/evals`` belongs to a checkpoint not shipped."""
    data = Path(__file__).resolve().parents[1] / "data"
    assert len(list((data / "fast").glob("*.npz"))) > 400, f"the shipped fast cache in {data / 'fast'} is missing"
    stale = store.stale_files(data, "fast") + evaluation.stale_evaluations(data)
    assert not stale, f"{len(stale)} stale files in {data} (python -m lintx prune lists them): {[p.name for p in stale[:5]]}"


def test_prune_lists_then_deletes_only_what_nothing_reads(tmp_path, tiny, monkeypatch, capsys):
    cfg, noise = ModelConfig("diag", 1), Uniform(1.0)
    old = store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    old_path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    evals = tmp_path / "evals"
    old_eval = evaluation.evaluate_checkpoint(tmp_path, old_path, eval_seed=1, num=1_000)
    baseline = evaluation.cached(evals, {"predictor": "ConstRR()", "num": 1}, lambda: {"loss": 1.0})
    assert old_eval and baseline and len(list(evals.glob("*.json"))) == 2
    (tmp_path / "tiny" / "x-s0-0000000000.diverged.json").write_text("{}")  # a record of no current model
    # the recipe changes: the old checkpoint, its sidecar, its evaluation and the record become stale
    monkeypatch.setitem(profiles.PROFILES, "tiny", dataclasses.replace(tiny, recipe=lambda c, n: TrainConfig(steps=12, batch=32, chunk=12)))
    new_path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    evaluation.evaluate_checkpoint(tmp_path, new_path, eval_seed=1, num=1_000)
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file() and ".locks" not in p.parts)
    assert main(["prune", "--profile", "tiny", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 stale checkpoints, 1 other stale files" in out and "1 stale evaluations" in out and old_path.name in out
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file() and ".locks" not in p.parts) == before  # listed only
    assert main(["prune", "--profile", "tiny", "--data", str(tmp_path), "--delete"]) == 0
    left = {p.name for p in tmp_path.rglob("*") if p.is_file() and ".locks" not in p.parts}
    assert not old_path.exists() and not old_path.with_suffix(".json").exists()
    assert not (tmp_path / "tiny" / "x-s0-0000000000.diverged.json").exists()
    assert {new_path.name, new_path.with_suffix(".json").name} <= left and len(list(evals.glob("*.json"))) == 2  # new + baseline
    assert load(new_path).meta["npz_sha256"] != old.meta["npz_sha256"]
    assert store.stale_files(tmp_path, "tiny") == [] and evaluation.stale_evaluations(tmp_path) == []


def test_fast_grows_deep_diag_and_gdpp_and_starts_noiseless_deep_full_from_diag():
    """The shipped cache's warm starts (lintx.profiles._fast_start): DIAG and GD++ with 7+ layers (5+ without
    noise) are grown from their (L-1)-layer model with the random start's recipe, its new layer drawn
    smaller; FULL with 5+ layers without noise fine-tunes the DIAG model of its depth; everything else
    trains from a random start."""
    fast = profiles.get_profile("fast")
    warm = {(cfg.variant, cfg.layers, noise.label): store.parent_config(fast, cfg, noise) for cfg, noise in store.study_grid()}
    grown = {(v, L, c): ModelConfig(v, L - 1) for v in ("gdpp", "diag") for c in COLUMNS for L in range(5 if c == "u0" else 7, 8)}
    grown |= {(v, 8, "u5"): ModelConfig(v, 7) for v in ("gdpp", "diag")}
    from_diag = {("full", L, "u0"): ModelConfig("diag", L) for L in (5, 6, 7)}
    assert {k: v for k, v in warm.items() if v is not None} == grown | from_diag
    assert fast.recipe(ModelConfig("full", 5), Uniform(0.0)).lr < fast.recipe(ModelConfig("full", 5), Uniform(1.0)).lr
    random_start, grown_tc = fast.recipe(ModelConfig("diag", 6), Uniform(1.0)), fast.recipe(ModelConfig("diag", 7), Uniform(1.0))
    assert grown_tc.init_std < random_start.init_std and dataclasses.replace(grown_tc, init_std=random_start.init_std) == random_start
    # without noise a grown model trains longer, the longer the deeper (lintx.profiles._noiseless_steps)
    noiseless_steps = [fast.recipe(ModelConfig(v, L), Uniform(0.0)).steps for v in ("diag", "gdpp") for L in (5, 6, 7)]
    assert noiseless_steps[:3] == noiseless_steps[3:] and noiseless_steps[0] > random_start.steps
    assert noiseless_steps[0] < noiseless_steps[1] < noiseless_steps[2]


def test_fast_trains_full_with_6_plus_layers_in_float64():
    """FULL with 6+ layers overflows float32 mid-training (lintx.profiles._fast): its random-start recipe is
    float64; everything else, the noiseless FULL fine-tunes from DIAG included, stays float32."""
    fast = profiles.get_profile("fast")
    f64 = {(cfg.variant, cfg.layers, noise.label) for cfg, noise in store.study_grid() if fast.recipe(cfg, noise).dtype == "float64"}
    labels = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "c13", "c135"]
    assert f64 == {("full", L, c) for L in (6, 7) for c in labels} | {("full", 8, "u5")}


def test_float64_recipe_trains_without_64_bit_jax_switched_on(tmp_path, monkeypatch):
    """The runner switches 64-bit JAX on for a float64 recipe only while it trains: the checkpoint holds
    float64 weights, the process's setting is left as it was, and a float32 recipe is unchanged by it.
    DIAG and GD++ refuse float64 (their checkpoints' diagonal form is verified exactly, in float32)."""
    import jax

    cfg, noise = ModelConfig("full", 1), Uniform(1.0)
    tc = TrainConfig(steps=10, batch=32, chunk=10, dtype="float64")
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", lambda c, n: tc, 1, "test profile", validation_num=2_000))
    assert not jax.config.jax_enable_x64
    ck = store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert not jax.config.jax_enable_x64
    assert ck.P.dtype == np.float64 and ck.meta["train"]["dtype"] == "float64" and np.isfinite(ck.meta["validation_loss"])
    with pytest.raises(ValueError, match="float64 recipe is supported for FULL only"):
        store.get_or_train(tmp_path, "tiny", ModelConfig("diag", 1), noise, 0)
    tc32 = dataclasses.replace(tc, dtype="float32")
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", lambda c, n: tc32, 1, "test profile", validation_num=2_000))
    via_store = store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert via_store.P.dtype == np.float32
    np.testing.assert_array_equal(via_store.P, from_training(cfg, noise, tc32, train(cfg, noise, tc32, seeds=(0,)), 0).P)


def test_several_random_starts_keep_the_one_best_on_selection_sequences(tmp_path, monkeypatch, count_training):
    """A profile with ``starts`` trains that many initialisations of a seed in one run and keeps the start with
    the lowest loss on the selection sequences, recorded in the sidecar; the number of starts is keyed."""
    recipe = lambda c, n: TrainConfig(steps=10, batch=32, chunk=10)
    one = Profile("tiny", recipe, 1, "", validation_num=2_000)
    three = Profile("tiny", recipe, 1, "", validation_num=2_000, starts=lambda c, n: 3)
    cfg, noise = ModelConfig("diag", 2), Uniform(1.0)
    monkeypatch.setitem(profiles.PROFILES, "tiny", one)
    single = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 4)
    monkeypatch.setitem(profiles.PROFILES, "tiny", three)
    assert store.checkpoint_path(tmp_path, "tiny", cfg, noise, 4) != single
    ckpt = store.get_or_train(tmp_path, "tiny", cfg, noise, 4)
    starts = store.start_seeds(4, 3)
    assert count_training == [("diag", 2, "u1", starts)] and starts[0] == 4 and len(set(starts)) == 3
    losses = ckpt.meta["selection_losses"]
    assert len(losses) == 3 and ckpt.meta["start"] == int(np.argmin(losses)) and ckpt.meta["start_seed"] == starts[ckpt.meta["start"]]
    assert ckpt.meta["seed"] == 4 and len(set(losses)) == 3
    # the kept start is the one the loss names: retrain every start alone and compare
    res = train(cfg, noise, recipe(cfg, noise), starts)
    again = store.selection_losses(cfg, noise, 4, res)
    np.testing.assert_allclose(again, losses, rtol=1e-4)
    np.testing.assert_allclose(from_training(cfg, noise, recipe(cfg, noise), res, int(np.argmin(again))).P, ckpt.P, atol=1e-5)
    store.get_or_train(tmp_path, "tiny", cfg, noise, 4)
    assert len(count_training) == 1  # not retrained


def test_starts_refuse_a_warm_start_and_bad_counts(tmp_path, monkeypatch):
    recipe = lambda c, n: TrainConfig(steps=10, batch=32, chunk=10)
    shallower = lambda cfg, noise: dataclasses.replace(cfg, layers=cfg.layers - 1) if cfg.layers > 1 else None
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", recipe, 1, "", start_from=shallower, starts=lambda c, n: 2))
    with pytest.raises(ValueError, match="warm-started, so it has one start"):
        store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 2), Uniform(1.0), 0)
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", recipe, 1, "", starts=lambda c, n: 0))
    with pytest.raises(ValueError, match="starts must be an integer >= 1, got 0"):
        store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 1), Uniform(1.0), 0)


def test_a_rival_is_trained_beside_the_model_and_the_better_on_selection_sequences_kept(tmp_path, monkeypatch, count_training):
    """A profile with ``rival`` trains each seed twice: its own training and a fine-tune of the simpler model
    of that depth and seed (trained first); the one with the lower selection loss is saved, the sidecar says
    which and both losses; the rival is keyed by its parent and recipe; nothing is retrained a second time."""
    recipe = lambda c, n: TrainConfig(steps=10, batch=32, chunk=10)
    fine_tune = TrainConfig(steps=10, batch=32, chunk=10, lr=1e-9)
    cfg, noise = ModelConfig("full", 2), Categorical((1.0, 3.0))
    plain = Profile("tiny", recipe, 1, "", validation_num=2_000)
    monkeypatch.setitem(profiles.PROFILES, "tiny", plain)
    alone = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 3)
    rivalled = Profile("tiny", recipe, 1, "", validation_num=2_000,
                       rival=lambda c, n: (dataclasses.replace(c, variant="diag"), fine_tune) if c.variant == "full" else None)
    monkeypatch.setitem(profiles.PROFILES, "tiny", rivalled)
    path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 3)
    assert path != alone
    ckpt = store.get_or_train(tmp_path, "tiny", cfg, noise, 3)
    assert [c[:2] for c in count_training] == [("full", 2), ("diag", 2), ("full", 2)]
    diag = store.load(store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 2), noise, 3))
    r = ckpt.meta["rival"]
    assert r["from"] == store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 2), noise, 3).name
    assert set(r["selection_losses"]) == {"own", "rival"} and r["chosen"] == min(r["selection_losses"], key=r["selection_losses"].get)
    # the losses are those of the two models: the rival at lr ~ 0 is still the DIAG model
    sel = lambda model: store._stream_loss(model, noise, 3, store._SELECTION_STREAM, store.SELECTION_NUM)
    np.testing.assert_allclose(r["selection_losses"]["rival"], sel(diag.model), rtol=1e-4)
    if r["chosen"] == "rival":
        np.testing.assert_allclose(ckpt.P, diag.P, atol=1e-6)
        assert ckpt.meta["train"]["lr"] == 1e-9
    else:
        assert ckpt.meta["train"]["lr"] == recipe(cfg, noise).lr
    assert ckpt.meta["validation_loss"] is not None and ckpt.meta["retries"] == 0
    # the other candidate is chosen when its loss is lower: make the own training worthless
    worse = lambda c, n: TrainConfig(steps=10, batch=32, chunk=10, lr=1e-9, init_std=3.0) if c.variant == "full" else recipe(c, n)
    monkeypatch.setitem(profiles.PROFILES, "tiny", dataclasses.replace(rivalled, recipe=worse))
    other = store.get_or_train(tmp_path, "tiny", cfg, noise, 3)
    assert other.meta["rival"]["chosen"] == "rival"
    np.testing.assert_allclose(other.P, diag.P, atol=1e-6)
    n = len(count_training)
    store.get_or_train(tmp_path, "tiny", cfg, noise, 3)
    assert len(count_training) == n  # not retrained
    assert store.stale_files(tmp_path, "tiny") == [path, store.sidecar_path(path)]  # the DIAG parent is current


def test_a_rival_must_start_from_a_simpler_model_of_the_same_depth(tmp_path, monkeypatch):
    recipe = lambda c, n: TrainConfig(steps=10, batch=32, chunk=10)
    for bad, match in (((ModelConfig("diag", 1), recipe(None, None)), "same depth in a simpler variant"),
                       ((ModelConfig("full", 2), recipe(None, None)), "same depth in a simpler variant"),
                       ("diag", "must give")):
        monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", recipe, 1, "", rival=lambda c, n, bad=bad: bad))
        with pytest.raises((ValueError, TypeError), match=match):
            store.checkpoint_path(tmp_path, "tiny", ModelConfig("full", 2), Uniform(1.0), 0)
    shallower = lambda cfg, noise: dataclasses.replace(cfg, layers=cfg.layers - 1) if cfg.layers > 1 else None
    monkeypatch.setitem(profiles.PROFILES, "tiny", Profile("tiny", recipe, 1, "", start_from=shallower,
                                                          rival=lambda c, n: (dataclasses.replace(c, variant="diag"), recipe(c, n)) if c.variant == "full" else None))
    with pytest.raises(ValueError, match="warm-started, so it cannot also have a rival"):
        store.checkpoint_path(tmp_path, "tiny", ModelConfig("full", 2), Uniform(1.0), 0)


def test_the_method_trains_from_every_start_and_is_never_worse_on_selection_than_what_it_grew_from_or_contains(tmp_path, monkeypatch, count_training):
    """A profile of :mod:`lintx.method`: a FULL model is grown from its shallower version and embedded from the
    DIAG model of its depth, both trained together (one vmapped call); the untrained starts compete,
    so on the seed's selection sequences the checkpoint is at least as good as the shallower FULL model and
    the DIAG model it contains. Both parents are part of its key."""
    from lintx import method

    prof = profiles._method_profile("tiny", method.Budget(steps=10, batch=32, chunk=10), 1, "", validation_num=2_000)
    monkeypatch.setitem(profiles.PROFILES, "tiny", prof)
    noise = Uniform(1.0)
    full2 = store.get_or_train(tmp_path, "tiny", ModelConfig("full", 2), noise, 0)
    # every model: its warm starts (grown, embedded), trained together; a random start where it has none
    assert [(v, L, len(s)) for v, L, _, s in count_training] == [
        ("gdpp", 1, 1), ("diag", 1, 1), ("full", 1, 1), ("gdpp", 2, 1), ("diag", 2, 2), ("full", 2, 2)]
    assert count_training[-1][3] == (0, 1_000_000)
    found = lambda v, L: store.load(store.checkpoint_path(tmp_path, "tiny", ModelConfig(v, L), noise, 0))
    sel = lambda ck: store._stream_loss(ck.model, noise, 0, store._SELECTION_STREAM, store.SELECTION_NUM)
    mine = sel(full2)
    assert mine <= min(full2.meta["start_losses"]) * (1 + 1e-6)
    assert mine <= sel(found("full", 1)) * (1 + 1e-3) + 1e-4  # the grown start: the 1-layer model plus a layer near 0
    assert mine <= sel(found("diag", 2)) * (1 + 1e-5)  # the embedded start computes the DIAG model exactly
    assert full2.meta["grown_from"] == store.checkpoint_path(tmp_path, "tiny", ModelConfig("full", 1), noise, 0).name
    assert full2.meta["embedded_from"] == store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 2), noise, 0).name
    # the key holds both parents: another budget of a parent renames the child
    other = dataclasses.replace(prof, embed_from=lambda cfg: None)
    assert store.checkpoint_path(tmp_path, other, ModelConfig("full", 2), noise, 0) != store.checkpoint_path(tmp_path, prof, ModelConfig("full", 2), noise, 0)


def test_the_method_keeps_the_best_warm_start_when_every_training_diverges(tmp_path, monkeypatch):
    """A model of the method whose candidates diverge after every retry is its best warm start (the grown
    shallower model or the embedded simpler one), with the reason in its sidecar, never a failure that takes
    every deeper model down with it."""
    from lintx import method

    prof = profiles._method_profile("tiny", method.Budget(steps=10, batch=32, chunk=10), 1, "", validation_num=2_000)
    monkeypatch.setitem(profiles.PROFILES, "tiny", prof)
    noise, real = Uniform(1.0), store.train

    def diverging(cfg, noise, tc, seeds, callback=None, init=None):
        result = real(cfg, noise, tc, seeds, callback, init)
        return result._replace(diverged=np.full(len(seeds), cfg.layers == 2 and cfg.variant == "diag"))

    monkeypatch.setattr(store, "train", diverging)
    ck = store.get_or_train(tmp_path, "tiny", ModelConfig("diag", 2), noise, 0)
    assert ck.meta["retries"] == store.MAX_RETRIES and "every candidate diverged" in ck.meta["trained"]
    starts = [store.warm_start(ModelConfig("diag", 2), noise, store.load(store.checkpoint_path(tmp_path, "tiny", c, noise, 0)), 0,
                               prof.recipe(ModelConfig("diag", 2), noise)) for c in (ModelConfig("diag", 1), ModelConfig("gdpp", 2))]
    np.testing.assert_array_equal(ck.model.params["p"], starts[ck.meta["kept_start"]]["p"])
    assert ck.meta["final_loss"] == min(ck.meta["start_losses"])
    deeper = store.get_or_train(tmp_path, "tiny", ModelConfig("full", 3), noise, 0)  # trains on from it
    assert deeper.meta["embedded_from"] == store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 3), noise, 0).name


def test_fast_gives_full_with_5_plus_layers_on_1_3_5_a_rival_from_diag():
    fast = profiles.get_profile("fast")
    c135, c13 = Categorical((1.0, 3.0, 5.0)), Categorical((1.0, 3.0))
    for L in (5, 6, 7):
        src, tc = fast.rival(ModelConfig("full", L), c135)
        assert src == ModelConfig("diag", L) and tc == profiles._FROM_DIAG and tc.lr == 1e-5
    for cfg, noise in ((ModelConfig("full", 4), c135), (ModelConfig("full", 5), c13), (ModelConfig("full", 5), Uniform(5.0)),
                       (ModelConfig("diag", 5), c135)):
        assert fast.rival(cfg, noise) is None
    assert all(p.rival is None for name, p in profiles.PROFILES.items() if name != "fast")


def test_fast_trains_full_longer_on_categorical_noise_where_it_gains_from_steps():
    """FULL is still gaining from steps on categorical noise (lintx.profiles._fast): with 3 layers it trains
    twice its uniform-noise steps on both columns, with 5-7 layers on {1,3} 16 times, with 7
    layers on {1,3,5} 16 times at a third of the learning rate, at the same batch; no other
    model's recipe depends on the noise kind."""
    fast = profiles.get_profile("fast")
    longer = {}
    for cfg, noise in store.study_grid():
        if noise.label in ("c13", "c135"):
            tc, tu = fast.recipe(cfg, noise), fast.recipe(cfg, Uniform(3.0))
            if tc != tu:
                assert dataclasses.replace(tc, steps=tu.steps, lr=tu.lr) == tu
                longer[(cfg.variant, cfg.layers, noise.label)] = (tc.steps / tu.steps, tc.lr / tu.lr)
    assert longer == {("full", 3, "c13"): (2, 1), ("full", 3, "c135"): (2, 1), ("full", 5, "c13"): (16, 1),
                      ("full", 6, "c13"): (16, 1), ("full", 7, "c13"): (16, 1), ("full", 7, "c135"): (16, pytest.approx(1 / 3))}


def test_fast_trains_diag_with_3_and_4_layers_from_the_best_of_several_starts():
    """``fast`` gives DIAG with 3 layers 8 random starts, with 4 layers and noise 4 (lintx.profiles._fast_starts),
    every other model one."""
    fast = profiles.get_profile("fast")
    many = {(cfg.variant, cfg.layers, noise.label): store.num_starts(fast, cfg, noise) for cfg, noise in store.study_grid()
            if store.num_starts(fast, cfg, noise) > 1}
    assert many == {**{("diag", 3, c): 8 for c in COLUMNS}, **{("diag", 4, c): 4 for c in COLUMNS if c != "u0"}}
    assert all(store.num_starts(profiles.get_profile(p), ModelConfig("diag", 3), Uniform(1.0)) == 1 for p in ("quick", "tiny", "paper"))


def test_a_refined_model_is_keyed_by_its_refinement_and_records_it(tmp_path, tiny, monkeypatch):
    """A profile's refinement (lintx.refine) is part of the checkpoint's key, with the code of refine.py,
    and the sidecar says how the model was refined and what it did on the sample."""
    cfg, noise = ModelConfig("diag", 2), Uniform(1.0)
    rc = RefineConfig(num=10_000, steps=3)
    refined = dataclasses.replace(tiny, refine=lambda c, n: rc if c.variant == "diag" else None)
    plain = store.checkpoint_path(tmp_path, tiny, cfg, noise, 0)
    monkeypatch.setitem(profiles.PROFILES, "tiny", refined)
    path = store.checkpoint_path(tmp_path, refined, cfg, noise, 0)
    assert path != plain
    assert store.checkpoint_path(tmp_path, refined, ModelConfig("gdpp", 2), noise, 0) == store.checkpoint_path(tmp_path, tiny, ModelConfig("gdpp", 2), noise, 0)
    other = dataclasses.replace(refined, refine=lambda c, n: RefineConfig(num=10_000, steps=4))
    assert store.checkpoint_path(tmp_path, other, cfg, noise, 0) != path
    ckpt = store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert path.exists() and ckpt.meta["refine"]["steps"] == 3 and ckpt.meta["refine"]["num"] == 10_000
    assert ckpt.meta["refine"]["loss_after"] < ckpt.meta["refine"]["loss_before"]
    # two stages: another key, each stage from the one before, both recorded
    staged = dataclasses.replace(refined, refine=lambda c, n: (rc, RefineConfig(num=20_000, steps=2)) if c.variant == "diag" else None)
    monkeypatch.setitem(profiles.PROFILES, "tiny", staged)
    two = store.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert store.checkpoint_path(tmp_path, staged, cfg, noise, 0) not in (path, plain)
    first, second = two.meta["refine"]["stages"]
    assert first == ckpt.meta["refine"] and second["num"] == 20_000 and second["steps"] == 2
    assert second["loss_after"] <= second["loss_before"]
    with pytest.raises(TypeError, match="a tuple of them or None"):
        store.refine_config(dataclasses.replace(refined, refine=lambda c, n: ()), cfg, noise)
    monkeypatch.setattr(store, "refine_config", lambda prof, c, n: (dataclasses.replace(rc, steps=rc.steps + 1),) if prof is refined else None)
    assert store.checkpoint_path(tmp_path, refined, cfg, noise, 0) != path  # another polish: trained anew
    assert store.checkpoint_path(tmp_path, tiny, cfg, noise, 0) == plain  # but not a model that is not refined


def test_fast_refines_diag_with_6_and_more_layers_on_1_3_only():
    """``fast`` polishes DIAG with 6+ layers on {1,3} by L-BFGS (lintx.profiles._fast_refine), nothing else."""
    fast = profiles.get_profile("fast")
    refined = {(cfg.variant, cfg.layers, noise.label) for cfg, noise in store.study_grid() if store.refine_config(fast, cfg, noise)}
    assert refined == {("diag", 6, "c13"), ("diag", 7, "c13")}
    c13 = Categorical((1.0, 3.0))
    assert store.refine_config(fast, ModelConfig("diag", 6), c13) == (RefineConfig(),)
    assert store.refine_config(fast, ModelConfig("diag", 7), c13) == (RefineConfig(), RefineConfig(num=200_000, steps=300))
    assert all(store.refine_config(profiles.get_profile(p), ModelConfig("diag", 7), Categorical((1.0, 3.0))) is None
               for p in ("quick", "tiny", "paper"))


def test_grid_runner_trains_a_spare_seed_for_each_seed_that_diverged(tmp_path, monkeypatch, capsys):
    """A profile's seed that diverges after every retry is replaced by its spares in order (a spare that
    diverges too by the next), only for the profile's own seeds; the diverged records stay and are current."""
    prof = Profile("tiny", lambda cfg, noise: TrainConfig(steps=10, batch=32, chunk=10), 2, "", validation_num=2_000, spare_seeds=2)
    monkeypatch.setitem(profiles.PROFILES, "tiny", prof)
    real, calls = store.train, []

    def seeds_1_and_2_diverge(cfg, noise, tc, seeds, callback=None, init=None):
        calls.append(seeds[0])
        r = real(cfg, noise, tc, seeds, init=init)
        return r._replace(diverged=np.array([seeds[0] in (1, 2)]))

    monkeypatch.setattr(store, "train", seeds_1_and_2_diverge)
    cfg, noise = ModelConfig("diag", 1), Uniform(1.0)
    argv = ["train", "--profile", "tiny", "--data", str(tmp_path), "--columns", "u1", "--depths", "1", "--variants", "diag", "--no-deep-u5"]
    assert main([*argv, "--seeds", "0", "1", "--diverged-ok"]) == 0
    assert calls == [0, 1, 1, 1], "explicit seeds: no spare"
    calls.clear()
    assert main([*argv, "--diverged-ok"]) == 0
    assert calls == [2, 2, 2, 3], "seed 1 diverged: spare 2 diverges too, spare 3 takes its place"
    assert "diag L1 u1: spare seed 2 for a seed that diverged after every retry" in capsys.readouterr().out
    assert [s for s, _ in store.checkpoints(tmp_path, "tiny", cfg, noise, [0, 1], train_missing=False, extra_seeds=[2, 3])] == [0, 3]
    calls.clear()
    assert main(argv) == 0 and calls == [], "nothing left to train"
    assert store.stale_files(tmp_path, "tiny") == []  # the records of seeds 1 and 2 are current
    # a spare counts only in place of a missing seed: once seed 1 is trained, the cell is seeds 0 and 1
    store.failure_path(store.checkpoint_path(tmp_path, "tiny", cfg, noise, 1)).unlink()
    monkeypatch.setattr(store, "train", real)
    store.get_or_train(tmp_path, "tiny", cfg, noise, 1)
    assert [s for s, _ in store.checkpoints(tmp_path, "tiny", cfg, noise, [0], train_missing=False, extra_seeds=[1, 2, 3])] == [0, 1]
    with pytest.raises(ValueError, match="spare_seeds must be an integer >= 0"):
        dataclasses.replace(prof, spare_seeds=-1)


def test_fast_has_two_spare_seeds_and_the_others_none():
    assert profiles.get_profile("fast").spare_seeds == 2
    assert [profiles.get_profile(p).spare_seeds for p in ("paper", "quick", "tiny")] == [0, 0, 0]


def test_held_out_and_selection_sequences_do_not_depend_on_64_bit_jax(tmp_path, tiny):
    """The held-out check and the choice among starts and rivals see the same sequences whether or not the
    process has 64-bit JAX on (the samplers draw other sigmas with it on)."""
    import jax

    ck = store.get_or_train(tmp_path, "tiny", ModelConfig("diag", 1), Categorical((1.0, 3.0, 5.0)), 0)
    plain = store.held_out_loss(ck, 2_000), store._selection_loss(ck.model, ck.noise, 0)
    with jax.enable_x64(True):
        assert (store.held_out_loss(ck, 2_000), store._selection_loss(ck.model, ck.noise, 0)) == plain
