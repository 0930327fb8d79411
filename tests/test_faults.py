"""Faults: a runner killed at any instant, a half-written or edited checkpoint, runners side by side, signals.

The runner (``python -m lintx train``) is killed with SIGKILL at random instants and rerun; afterwards every
checkpoint that counts as trained verifies, the finished set is complete, and the training log names each
model once: nothing half-written is used, and nothing is trained twice.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lintx import fit, method, store
from lintx.checkpoint import CheckpointError, load, save, sidecar_path
from lintx.model import ModelConfig
from lintx.tasks import Uniform

ROOT = Path(__file__).resolve().parents[1]
GRID = ["--profile", "tiny", "--columns", "u1", "--depths", "1-2", "--variants", "gdpp", "diag", "--no-deep-u5"]
MODELS = 2 * 2 * 2  # variants x depths x seeds


def _runner(data: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
    return subprocess.Popen([sys.executable, "-m", "lintx", "train", *GRID, "--seeds", "0", "1", "--data", str(data), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _logged(data: Path) -> list[str]:
    log = data / "tiny" / "train_log.jsonl"
    return [json.loads(line)["checkpoint"] for line in log.read_text().splitlines()] if log.exists() else []


def _verify_trained(data: Path) -> list[Path]:
    trained = [p for p in sorted((data / "tiny").glob("*.npz")) if store.is_trained(p)]
    for p in trained:
        load(p)  # raises CheckpointError if anything that counts as trained does not verify
    return trained


@pytest.mark.slow
def test_a_runner_killed_at_random_instants_resumes_and_trains_each_model_once(tmp_path):
    rng = random.Random(32)
    for _ in range(20):
        p = _runner(tmp_path)
        time.sleep(rng.uniform(0.5, 4.0))
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        _verify_trained(tmp_path)
    done = _runner(tmp_path)
    assert done.wait(timeout=300) == 0, done.stderr.read()
    trained = _verify_trained(tmp_path)
    names = _logged(tmp_path)
    assert len(trained) == MODELS
    assert len(names) == len(set(names)) and set(names) <= {p.name for p in trained}


@pytest.mark.slow
def test_three_runners_on_one_empty_directory_train_each_model_once(tmp_path):
    runners = [_runner(tmp_path) for _ in range(3)]
    assert [r.wait(timeout=300) for r in runners] == [0, 0, 0]
    names = _logged(tmp_path)
    assert len(_verify_trained(tmp_path)) == MODELS and sorted(names) == sorted(set(names)) and len(names) == MODELS


@pytest.mark.slow
def test_sigint_stops_the_runner_and_every_worker(tmp_path):
    p = _runner(tmp_path, "--workers", "2")
    time.sleep(4)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=30) == 130
    time.sleep(1)
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in ps, "a worker outlived the runner"


@pytest.fixture
def saved(tmp_path, monkeypatch):
    from lintx import method
    from lintx.method import Budget, Profile

    monkeypatch.setitem(method.PROFILES, "tiny", Profile("tiny", Budget(steps=5, batch=16, warm_starts=False), 1, "", validation_num=2_000))
    cfg, noise = ModelConfig("diag", 1), Uniform(1.0)
    fit.get_or_train(tmp_path, "tiny", cfg, noise, 0)
    return tmp_path, cfg, noise, store.checkpoint_path(tmp_path, "tiny", cfg, noise, 0)


def test_an_npz_without_its_sidecar_is_not_trained_and_is_retrained(saved):
    data, cfg, noise, path = saved
    sidecar_path(path).unlink()
    path.write_bytes(path.read_bytes()[:100])  # truncated, as a crash between the writes could leave it
    assert not store.is_trained(path) and path in store.stale_files(data, "tiny")
    fit.get_or_train(data, "tiny", cfg, noise, 0)
    assert store.is_trained(path) and load(path)


@pytest.mark.parametrize("field, value", [("variant", "full"), ("noise", {"kind": "uniform", "sigma_max": 5.0}), ("seed", 3)])
def test_an_edited_sidecar_is_an_error_naming_the_file(saved, field, value):
    data, cfg, noise, path = saved
    meta = json.loads(sidecar_path(path).read_text())
    meta[field] = value
    if field == "variant":  # keep the arrays' form consistent, so only the name can tell
        meta["variant"] = "full"
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=path.stem):
        fit.get_or_train(data, "tiny", cfg, noise, 0)
    bad = []
    store.stale_files(data, "tiny", bad=bad)
    assert [p for p, _ in bad] == [path]


def test_saving_over_a_read_only_checkpoint_is_refused(saved):
    data, cfg, noise, path = saved
    ck = load(path)
    path.chmod(0o444)
    try:
        with pytest.raises(PermissionError, match="read-only"):
            save(path, ck)
    finally:
        path.chmod(0o644)
    np.testing.assert_array_equal(load(path).P, ck.P)


def _grid_names(data: Path, columns, seeds) -> set[str]:
    from lintx.tasks import noise_from_label

    return {store.checkpoint_path(data, "tiny", ModelConfig(v, L), noise_from_label(c), s).name
            for c in columns for L in (1, 2) for v in ("gdpp", "diag") for s in seeds}


@pytest.mark.slow
def test_n_shards_as_separate_processes_train_the_grid_between_them_each_model_once(tmp_path):
    """A job array of 3 (``--shard K/3``, and ``--shard 3`` with the index in ``JOB_COMPLETION_INDEX``) on one
    directory: shard 0 alone trains exactly its part; shards 1 and 2 side by side train the rest; the union
    is the grid and the log names each model once."""
    from lintx import grid as study

    columns = ["u1", "u2", "u3"]
    grid = [*GRID[:3], *columns, *GRID[4:]]
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
    env.pop("SLURM_ARRAY_TASK_ID", None)

    def shard(*arg, **extra_env):
        return subprocess.Popen([sys.executable, "-m", "lintx", "train", *grid, "--seeds", "0", "1", "--data", str(tmp_path), *arg],
                                cwd=ROOT, env={**env, **extra_env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    first = shard("--shard", "0/3")
    assert first.wait(timeout=300) == 0, first.stderr.read()
    prof = method.get_profile("tiny")
    jobs = study.jobs(prof, [0, 1], depths=[1, 2], columns=columns, variants=["gdpp", "diag"], deep_u5=False)
    part0 = {store.checkpoint_path(tmp_path, prof, c, n, s).name for c, n, s in study.shard(jobs, 0, 3)}
    assert part0 and set(_logged(tmp_path)) == part0
    rest = [shard("--shard", "1/3"), shard("--shard", "3", JOB_COMPLETION_INDEX="2")]
    assert [r.wait(timeout=300) for r in rest] == [0, 0], [r.stderr.read() for r in rest]
    names = _logged(tmp_path)
    assert len(names) == len(set(names)) and set(names) == _grid_names(tmp_path, columns, (0, 1))
    assert {p.name for p in _verify_trained(tmp_path)} == set(names)


def test_a_shard_index_comes_from_the_argument_or_the_schedulers_variable_and_a_missing_one_is_an_error():
    import argparse

    from lintx.__main__ import _shard_arg

    assert _shard_arg("2/4", {}) == (2, 4)
    assert _shard_arg("4", {"SLURM_ARRAY_TASK_ID": "3"}) == (3, 4)
    assert _shard_arg("4", {"JOB_COMPLETION_INDEX": "0"}) == (0, 4)
    for text, environ, match in (("4", {}, "SLURM_ARRAY_TASK_ID"), ("4/4", {}, "0 <= K < N"), ("4", {"JOB_COMPLETION_INDEX": "x"}, "JOB_COMPLETION_INDEX='x'"),
                                 ("a/b", {}, "K/N"), ("4", {"SLURM_ARRAY_TASK_ID": "4"}, "K=4, N=4")):
        with pytest.raises(argparse.ArgumentTypeError, match=match):
            _shard_arg(text, environ)


@pytest.mark.parametrize("damage", ["npz", "sidecar"])
def test_a_rerun_stops_at_a_checkpoint_damaged_after_it_was_written_naming_it(tmp_path, damage, capsys):
    """The runner verifies what it would skip: a damaged ``.npz`` (its sidecar intact) or a sidecar that no
    longer matches its name stops the rerun with exit status 2, naming the file; nothing is trained over it."""
    from lintx.__main__ import main

    argv = ["train", *GRID, "--seeds", "0", "--data", str(tmp_path)]
    assert main(argv) == 0
    path = store.checkpoint_path(tmp_path, "tiny", ModelConfig("diag", 2), Uniform(1.0), 0)
    if damage == "npz":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        meta = json.loads(sidecar_path(path).read_text())
        sidecar_path(path).write_text(json.dumps({**meta, "seed": 1}))
    before = (path.read_bytes(), sidecar_path(path).read_text(), _logged(tmp_path))
    capsys.readouterr()
    assert main(argv) == 2
    out = capsys.readouterr()
    assert path.stem in out.err and f"BAD {path.with_suffix('')}" in out.out  # the .npz, or its sidecar .json
    assert (path.read_bytes(), sidecar_path(path).read_text(), _logged(tmp_path)) == before
