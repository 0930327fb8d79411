"""Checkpoints: ``NAME.npz`` with full ``P``, ``Q`` of shape ``(L, H, d+1, d+1)`` for every variant, and a
JSON sidecar ``NAME.json`` describing them.

- Deterministic: the same arrays and metadata give the same bytes (fixed zip timestamps, sorted keys, no
  wall-clock anywhere), so the same seed gives the same checkpoint on the same machine.
- Atomic: each file is written to a temporary file in the same folder and renamed into place; the npz
  goes first and the sidecar, which holds the npz's SHA-256, last, so a crash never leaves a sidecar that
  vouches for a missing or partial npz.
- Verified on load: a missing, truncated or altered file, or a sidecar that does not match the arrays
  (hash, shapes, variant form, finiteness), raises :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from lintx.model import Model, ModelConfig, from_full, to_full
from lintx.tasks import Noise, noise_from_json
from lintx.recipe import TrainConfig
from lintx.train import TrainResult, unstack
from lintx.versions import NUMERICS, versions

FORMAT = 1
# the store's names: VARIANT-L{layers}-H{heads}-{noise label}-s{seed}-{key}; a file so named must match its sidecar
_NAME = re.compile(r"^(?P<variant>gdpp|diag|full)-L(?P<layers>\d+)-H(?P<heads>\d+)-(?P<label>.+)-s(?P<seed>\d+)-[0-9a-f]{10}$")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted: the message names the file and what is wrong."""


class DivergedError(ValueError):
    """Refusal to save a model whose training diverged."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    cfg: ModelConfig
    noise: Noise
    P: np.ndarray  # (L, H, d+1, d+1)
    Q: np.ndarray  # (L, H, d+1, d+1)
    meta: dict  # seed, train recipe, steps, final loss, versions

    @property
    def model(self) -> Model:
        """The model as a predictor, in its variant's compact parameters."""
        return Model(self.cfg, from_full(self.cfg, self.P, self.Q))


def finite_or_none(xs) -> list:
    """``xs`` as JSON numbers: a float, or None where it is not finite (JSON has no NaN or infinity)."""
    return [float(x) if np.isfinite(x) else None for x in xs]


def from_training(cfg: ModelConfig, noise: Noise, tc: TrainConfig, result: TrainResult, i: int) -> Checkpoint:
    """Checkpoint of seed ``i`` of a training result; refuses a diverged seed."""
    seed = result.seeds[i]
    if result.diverged[i]:
        raise DivergedError(
            f"training diverged for {cfg} on {noise.to_json()} seed {seed} (final loss {result.final_loss[i]:.4g}, "
            f"{int(result.skipped_steps[i])} non-finite steps skipped); not saving it"
        )
    P, Q = (np.asarray(m) for m in to_full(cfg, unstack(result, i)))
    meta = {
        "seed": seed,
        "train": tc.to_json(),
        "steps": tc.steps,
        "final_loss": float(result.final_loss[i]),
        "skipped_steps": int(result.skipped_steps[i]),
    }
    if result.looks is not None:  # the wsd schedule: the steps that made it, and every look at its cooled copies
        meta["steps"] = int(result.steps[i])
        meta["looks"] = finite_or_none(result.looks[i])
        meta["restarts"] = int(result.restarts[i]) if result.restarts is not None else 0
    return Checkpoint(cfg, noise, P, Q, meta)


def sidecar_path(path) -> Path:
    return Path(path).with_suffix(".json")


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            arr = io.BytesIO()
            np.lib.format.write_array(arr, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, arr.getvalue())
    return buf.getvalue()


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would hide shared checkpoints from other users
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sidecar(ckpt: Checkpoint, npz: bytes) -> dict:
    cfg = ckpt.cfg
    return {
        "format": FORMAT,
        "variant": cfg.variant,
        "layers": cfg.layers,
        "heads": cfg.heads,
        "d": cfg.d,
        "n": cfg.n,
        "noise": ckpt.noise.to_json(),
        **ckpt.meta,
        "versions": {**versions(), "numerics": NUMERICS},
        "dtype": str(ckpt.P.dtype),
        "npz_sha256": hashlib.sha256(npz).hexdigest(),
    }


def save(path, ckpt: Checkpoint) -> Path:
    """Write ``path`` (``.npz``) and its sidecar atomically; returns the npz path."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"checkpoint path must end in .npz, got {path}")
    for target in (path, sidecar_path(path)):  # a rename would replace a read-only file without a word
        if target.exists() and not (os.access(target, os.W_OK) and target.stat().st_mode & 0o222):  # root ignores modes
            raise PermissionError(f"{target} is read-only; not replacing it")
    if not (np.all(np.isfinite(ckpt.P)) and np.all(np.isfinite(ckpt.Q))):
        raise DivergedError(f"{path}: refusing to save non-finite weights")
    from_full(ckpt.cfg, ckpt.P, ckpt.Q)  # the arrays must have the variant's form
    path.parent.mkdir(parents=True, exist_ok=True)
    npz = _npz_bytes({"P": ckpt.P, "Q": ckpt.Q})
    meta = json.dumps(sidecar(ckpt, npz), indent=1, sort_keys=True) + "\n"
    atomic_write(path, npz)
    atomic_write(sidecar_path(path), meta.encode())
    return path


def read_sidecar(path) -> dict:
    """The sidecar of checkpoint ``path``, parsed; :class:`CheckpointError` if missing or unreadable."""
    side = sidecar_path(path)
    try:
        meta = json.loads(side.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{side}: sidecar missing for checkpoint {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{side}: corrupt sidecar ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{side}: not a lintx checkpoint sidecar of format {FORMAT}")
    return meta


def load(path) -> Checkpoint:
    """Load and verify a checkpoint (see module docstring)."""
    path = Path(path)
    meta = read_sidecar(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint arrays missing (its sidecar exists)") from None
    if hashlib.sha256(data).hexdigest() != meta.get("npz_sha256"):
        raise CheckpointError(f"{path}: contents do not match the SHA-256 in its sidecar (truncated, altered or stale)")
    try:
        cfg = ModelConfig(meta["variant"], meta["layers"], meta["heads"], meta["d"], meta["n"])
        noise = noise_from_json(meta["noise"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{sidecar_path(path)}: invalid model or noise description ({e})") from None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if sorted(z.files) != ["P", "Q"]:
                raise CheckpointError(f"{path}: expected arrays P and Q, found {sorted(z.files)}")
            P, Q = z["P"], z["Q"]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: unreadable npz ({e})") from None
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(Q))):
        raise CheckpointError(f"{path}: non-finite weights")
    try:
        from_full(cfg, P, Q)
    except ValueError as e:
        raise CheckpointError(f"{path}: arrays do not match the sidecar's model ({e})") from None
    named = _NAME.match(path.stem)
    if named and (named["variant"], int(named["layers"]), int(named["heads"]), named["label"], int(named["seed"])) != (
            cfg.variant, cfg.layers, cfg.heads, noise.label, meta.get("seed")):
        raise CheckpointError(f"{sidecar_path(path)}: describes {cfg.variant} L{cfg.layers} H{cfg.heads} {noise.label} seed "
                              f"{meta.get('seed')}, but the file is named {path.name} (an edited or misplaced sidecar)")
    keep = {k: v for k, v in meta.items() if k not in {"format", "variant", "layers", "heads", "d", "n", "noise"}}
    return Checkpoint(cfg, noise, P, Q, keep)
