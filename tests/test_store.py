"""The checkpoint cache and the grid runner: keyed by content, resumable, never retraining a finished
model, never saving a diverged one."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import lintx.fit as fit
import lintx.method as method
import lintx.selection as selection
import lintx.store as store
from lintx import evaluation
from lintx.__main__ import main
from lintx.checkpoint import CheckpointError, load
from lintx.method import Budget, Profile
from lintx.model import ModelConfig
from lintx.tasks import Uniform


@pytest.fixture
def flat(monkeypatch):
    """A tiny budget whose models train from a random start only (no warm starts: one model, one training)."""
    prof = Profile("tiny", Budget(steps=10, batch=32, chunk=10, warm_starts=False), 1, "test profile", validation_num=2_000)
    monkeypatch.setitem(method.PROFILES, "tiny", prof)
    return prof


def test_finished_model_is_not_retrained(tmp_path, flat, count_training):
    cfg, noise = ModelConfig("diag", 1), Uniform(1.0)
    a = fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    b = fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert len(count_training) == 1
    np.testing.assert_array_equal(a.P, b.P)


def test_changed_numerics_or_budget_trains_anew_and_keeps_the_old(tmp_path, flat, count_training, monkeypatch):
    cfg, noise = ModelConfig("diag", 1), Uniform(1.0)
    old = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    monkeypatch.setattr(method, "NUMERICS", method.NUMERICS + 1)
    new = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    assert new != old
    fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert len(count_training) == 2 and old.exists() and new.exists()
    monkeypatch.setitem(method.PROFILES, "tiny", dataclasses.replace(flat, budget=dataclasses.replace(flat.budget, steps=12)))
    assert store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0) not in (old, new)


def test_acceptance_is_part_of_the_key(tmp_path, monkeypatch):
    """The retry ladder, the held-out check and the selection pick which training is saved: changing any
    of them is a new key."""
    cfg, noise = ModelConfig("diag", 2), Uniform(5.0)
    shipped = store.checkpoint_path(tmp_path, "brisk", cfg, noise, 0)
    seen = {shipped}
    for name, value in [("MAX_RETRIES", 3), ("RETRY_LR_DIVISOR", 10), ("VALIDATION_FACTOR", 2.0), ("VALIDATION_SLACK", 0.0),
                        ("SELECTION_NUM", 1_000), ("START_STRIDE", 7)]:
        with monkeypatch.context() as m:
            m.setattr(method, name, value)
            path = store.checkpoint_path(tmp_path, "brisk", cfg, noise, 0)
        assert path not in seen, name
        seen.add(path)
    fewer = dataclasses.replace(method.get_profile("brisk"), validation_num=1_000)
    assert store.checkpoint_path(tmp_path, fewer, cfg, noise, 0) not in seen
    assert store.checkpoint_path(tmp_path, "brisk", cfg, noise, 0) == shipped


def test_corrupt_cached_checkpoint_is_an_error_not_a_retrain(tmp_path, flat, count_training):
    cfg, noise = ModelConfig("gdpp", 1), Uniform(1.0)
    fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match=path.name):
        fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    assert len(count_training) == 1


def test_seed_must_be_an_integer():
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got '0'"):
        store.checkpoint_path("data", "brisk", ModelConfig("diag", 1), Uniform(1.0), "0")


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown training profile 'fastest'"):
        store.checkpoint_path("data", "fastest", ModelConfig("diag", 1), Uniform(1.0), 0)


def test_grid_runner_resumes_after_interruption(tmp_path, flat, monkeypatch, capsys):
    real, calls = fit.train, []

    def interrupted(cfg, noise, tc, seeds, callback=None, init=None):
        calls.append(cfg.layers)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cfg, noise, tc, seeds, init=init)

    monkeypatch.setattr(fit, "train", interrupted)
    argv = ["train", "--profile", "tiny", "--data", str(tmp_path), "--columns", "u1", "--depths", "1-3", "--variants", "diag", "--no-deep-u5"]
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    assert len(list((tmp_path / "tiny").glob("*.npz"))) == 1
    calls.clear()
    monkeypatch.setattr(fit, "train", lambda cfg, noise, tc, seeds, callback=None, init=None: (calls.append(cfg.layers), real(cfg, noise, tc, seeds, init=init))[1])
    assert main(argv) == 0
    assert calls == [2, 3], "only the models not finished before the interruption are trained"
    assert len(list((tmp_path / "tiny").glob("*.npz"))) == 3
    log = [json.loads(line) for line in (tmp_path / "tiny" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 3 and all(r["seconds"] > 0 for r in log)


def test_logged_seconds_counts_each_kept_checkpoint_at_its_last_training(tmp_path, flat):
    folder = tmp_path / "tiny"
    folder.mkdir()
    assert store.logged_seconds(tmp_path, "tiny") == {}, "no log yet: nothing logged"
    (folder / "a.npz").write_bytes(b"")
    lines = [{"checkpoint": "a.npz", "seconds": 5.0}, {"checkpoint": "gone.npz", "seconds": 7.0},
             {"failed": "b.npz", "seconds": 3.0}, {"checkpoint": "a.npz", "seconds": 2.5}]
    (folder / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert store.logged_seconds(tmp_path, "tiny") == {"a.npz": 2.5}


def test_check_command_finds_a_checkpoint_that_fails_the_held_out_check(tmp_path, flat, monkeypatch, capsys):
    fit.get_or_train(tmp_path, "tiny", ModelConfig("gdpp", 1), Uniform(1.0), 0)
    assert main(["check", "--profile", "tiny", "--data", str(tmp_path)]) == 0
    assert "0 of 1 checkpoints" in capsys.readouterr().out  # checked when it was trained
    assert main(["check", "--profile", "tiny", "--data", str(tmp_path), "--all"]) == 0
    monkeypatch.setattr(selection, "held_out_loss", lambda ckpt, num: float("inf"))
    assert main(["check", "--profile", "tiny", "--data", str(tmp_path), "--all"]) == 1
    out = capsys.readouterr().out
    assert "FAILED gdpp-L1-H1-u1-s0-" in out and "1 failed" in out


def test_grid_runner_spreads_models_over_local_devices(tmp_path):
    """With two CPU devices, the runner trains on both (one thread each), and every checkpoint equals the
    one a single device trains: where a model was trained does not change it. DIAG's GD++ parents are
    trained with it (the tiny profile is the method, with its warm starts)."""
    import os
    import subprocess
    import sys

    argv = ["train", "--profile", "tiny", "--columns", "u1", "--depths", "1-2", "--variants", "diag", "--seeds", "0", "1", "--no-deep-u5"]
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2"}
    subprocess.run([sys.executable, "-m", "lintx", *argv, "--data", str(tmp_path / "two")], env=env, check=True, capture_output=True)
    log = [json.loads(line) for line in (tmp_path / "two" / "tiny" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 8 and {r["device"] for r in log} == {"cpu:0", "cpu:1"}
    assert main([*argv, "--data", str(tmp_path / "one")]) == 0
    one = sorted((tmp_path / "one" / "tiny").glob("*.npz"))
    two = sorted((tmp_path / "two" / "tiny").glob("*.npz"))
    assert [p.name for p in one] == [p.name for p in two] and len(one) == 8
    for a, b in zip(one, two):
        np.testing.assert_array_equal(load(a).P, load(b).P)
        np.testing.assert_array_equal(load(a).Q, load(b).Q)


def test_grid_runner_reports_an_earlier_divergence_without_failing(tmp_path, flat, count_training, capsys):
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


def test_grid_runner_diverged_ok_records_and_goes_on(tmp_path, flat, monkeypatch, capsys):
    """A model that diverges in this run fails the runner (exit 1), unless --diverged-ok (make figures):
    then it is recorded and reported, and the rest of the grid is trained."""
    real = fit.train
    monkeypatch.setattr(fit, "train", lambda cfg, noise, tc, seeds, callback=None, init=None: (
        lambda r: r._replace(diverged=np.full(len(seeds), cfg.variant == "full")))(real(cfg, noise, tc, seeds, callback, init)))
    argv = ["train", "--profile", "tiny", "--data", str(tmp_path), "--columns", "u5", "--depths", "3", "--variants", "diag", "full", "--no-deep-u5"]
    assert main(argv) == 1
    store.failure_path(store.checkpoint_path(tmp_path, "tiny", ModelConfig("full", 3), Uniform(5.0), 0)).unlink()
    assert main([*argv, "--diverged-ok"]) == 0
    assert "1 model(s) diverged after every retry and were not saved: full L3 u5 seed 0" in capsys.readouterr().out
    assert len(list((tmp_path / "tiny").glob("*.npz"))) == 1 and len(list((tmp_path / "tiny").glob("*.diverged.json"))) == 1


def test_shipped_cache_holds_only_current_checkpoints():
    """Every file in ``data/DEFAULT`` (the shipped profile's folder) is the current name of a model (a changed budget leaves the old file
    behind: ``python -m lintx prune --delete`` must remove it, not ship it beside the new one), every
    checkpoint loads and verifies, and no evaluation in ``data/evals`` belongs to a checkpoint not shipped."""
    data = Path(__file__).resolve().parents[1] / "data"
    assert len(list((data / method.DEFAULT).glob("*.npz"))) > 1000, f"the shipped cache in {data / method.DEFAULT} is missing"
    stale = store.stale_files(data, method.DEFAULT) + evaluation.stale_evaluations(data)
    assert not stale, f"{len(stale)} stale files in {data} (python -m lintx prune lists them): {[p.name for p in stale[:5]]}"


def test_prune_lists_then_deletes_only_what_nothing_reads(tmp_path, flat, monkeypatch, capsys):
    cfg, noise = ModelConfig("diag", 1), Uniform(1.0)
    old = fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    old_path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    evals = tmp_path / "evals"
    old_eval = evaluation.evaluate_checkpoint(tmp_path, old_path, eval_seed=1, num=1_000)
    baseline = evaluation.cached(evals, {"predictor": "ConstRR()", "num": 1}, lambda: {"loss": 1.0})
    assert old_eval and baseline and len(list(evals.glob("*.json"))) == 2
    (tmp_path / "tiny" / "x-s0-0000000000.diverged.json").write_text("{}")  # a record of no current model
    # the budget changes: the old checkpoint, its sidecar, its evaluation and the record become stale
    monkeypatch.setitem(method.PROFILES, "tiny", dataclasses.replace(flat, budget=dataclasses.replace(flat.budget, steps=12, chunk=12)))
    new_path = store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)
    fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
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
