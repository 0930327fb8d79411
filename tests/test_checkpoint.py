import json

import jax
import numpy as np
import pytest

from lintx import checkpoint
from lintx.checkpoint import CheckpointError, from_training, load, save, sidecar_path
from lintx.model import ModelConfig, to_full
from lintx.tasks import Categorical, Uniform
from lintx.recipe import TrainConfig
from lintx.train import train

TC = TrainConfig(steps=20, batch=64, chunk=10)


def trained(tmp_path, seed, variant="diag", noise=Uniform(2.0), name=None):
    cfg = ModelConfig(variant, 2)
    result = train(cfg, noise, TC, seeds=(seed,))
    path = tmp_path / (name or f"{variant}_{seed}.npz")
    return save(path, from_training(cfg, noise, TC, result, 0))


@pytest.mark.parametrize("variant", ["full", "diag", "gdpp"])
def test_round_trip(tmp_path, variant):
    noise = Categorical([1, 3])
    path = trained(tmp_path, 0, variant, noise)
    ck = load(path)
    assert ck.cfg == ModelConfig(variant, 2) and ck.noise == noise
    assert ck.P.shape == ck.Q.shape == (2, 1, 11, 11)
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["variant"] == variant and meta["noise"] == {"kind": "categorical", "values": [1.0, 3.0]}
    for field in ("seed", "train", "steps", "final_loss", "versions", "layers", "heads", "d", "n"):
        assert field in meta
    P, Q = to_full(ck.cfg, ck.model.params)
    np.testing.assert_array_equal(P, ck.P)
    np.testing.assert_array_equal(Q, ck.Q)


def test_same_seed_same_bytes_different_seeds_differ(tmp_path):
    a = trained(tmp_path / "a", 5)
    b = trained(tmp_path / "b", 5)
    c = trained(tmp_path / "c", 6)
    assert a.read_bytes() == b.read_bytes()
    assert sidecar_path(a).read_bytes() == sidecar_path(b).read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_truncated_checkpoint_is_an_error_naming_the_file(tmp_path):
    path = trained(tmp_path, 0)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=str(path.name)):
        load(path)


def test_altered_checkpoint_is_an_error(tmp_path):
    path = trained(tmp_path, 0)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load(path)


def test_missing_files(tmp_path):
    path = trained(tmp_path, 0)
    sidecar_path(path).unlink()
    with pytest.raises(CheckpointError, match="sidecar missing"):
        load(path)
    path = trained(tmp_path, 1)
    path.unlink()
    with pytest.raises(CheckpointError, match="arrays missing"):
        load(path)


def test_sidecar_that_does_not_match_its_arrays(tmp_path):
    path = trained(tmp_path, 0)
    meta = json.loads(sidecar_path(path).read_text())
    meta["layers"] = 3
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match"):
        load(path)
    # arrays swapped in from another checkpoint: the hash no longer matches
    other = trained(tmp_path, 1)
    path2 = trained(tmp_path, 2)
    path2.write_bytes(other.read_bytes())
    with pytest.raises(CheckpointError, match="SHA-256"):
        load(path2)


def test_corrupt_sidecar(tmp_path):
    path = trained(tmp_path, 0)
    sidecar_path(path).write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt sidecar"):
        load(path)


def test_refuses_arrays_of_the_wrong_form(tmp_path):
    path = trained(tmp_path, 0)
    ck = load(path)
    P = ck.P.copy()
    P[0, 0, 0, 1] = 1.0  # not diagonal: not a DIAG model
    with pytest.raises(ValueError, match="form"):
        save(tmp_path / "bad.npz", checkpoint.Checkpoint(ck.cfg, ck.noise, P, ck.Q, ck.meta))
    assert not (tmp_path / "bad.npz").exists()


def test_no_partial_files_left_behind(tmp_path):
    trained(tmp_path, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diag_0.json", "diag_0.npz"]
