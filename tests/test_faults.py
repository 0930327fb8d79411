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

from lintx import fit, store
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
