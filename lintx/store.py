"""The checkpoint cache in ``data/``: checkpoints kept under names that are keys of their content.

A checkpoint's file name (:func:`lintx.method.name`) carries a hash of everything that determines it: the
model, the noise, the recipe, the seed, the numerics version :data:`lintx.versions.NUMERICS`, the acceptance
and the names of the checkpoints it was trained from. So a changed recipe or changed numerics look for a
new name and train anew, while the old file stays (nothing is lost and nothing stale is reused). A file
that exists under the right name is loaded and verified; if it is corrupt that is an error naming it,
never a silent retrain over it.

This module only finds, reads and writes files; :mod:`lintx.fit` decides what to train. Writers take an
exclusive lock on a name (:func:`locked`), then look again, so two processes (``make -j2 figures``) never
train or write the same checkpoint twice. A model whose every training diverged is recorded beside where
its checkpoint would be (``NAME.diverged.json``), so it is reported again, not retrained, until that record
is deleted. A changed recipe or numerics leave the old files behind, unread; :func:`stale_files` lists them
and ``python -m lintx prune --delete`` removes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from pathlib import Path
from typing import Iterator, Optional, Sequence

from lintx.checkpoint import Checkpoint, CheckpointError, DivergedError, atomic_write, load, save, sidecar_path
from lintx.method import Profile, get_profile, name
from lintx.model import ModelConfig
from lintx.reference import COLUMNS
from lintx.tasks import Noise, noise_from_label


def checkpoint_path(data_dir, profile: str | Profile, cfg: ModelConfig, noise: Noise, seed: int) -> Path:
    """Where the checkpoint of ``(profile, cfg, noise, seed)`` is kept: ``DATA/PROFILE/NAME``."""
    prof = get_profile(profile)
    return Path(data_dir) / prof.name / name(prof, cfg, noise, seed)


def is_trained(path: Path) -> bool:
    """Whether the checkpoint at ``path`` counts as trained: its sidecar, written after the arrays
    (:func:`lintx.checkpoint.save`), exists. An ``.npz`` without its sidecar is what a crash between the two
    writes leaves: it counts as nothing, training writes over it and ``prune`` lists it. A sidecar whose
    arrays are missing or altered is an error when loaded, never a silent retrain."""
    return sidecar_path(path).exists()


def load_as(path: Path, cfg: ModelConfig, noise: Noise, seed: int) -> Checkpoint:
    """Load and verify ``path`` (:func:`lintx.checkpoint.load`), and check that its sidecar describes the
    model whose key named it: an edited or misplaced sidecar is a :class:`CheckpointError` naming the file."""
    ck = load(path)
    if (ck.cfg, ck.noise, ck.meta.get("seed")) != (cfg, noise, seed):
        raise CheckpointError(f"{sidecar_path(path)}: describes {ck.cfg} on {ck.noise.to_json()} seed {ck.meta.get('seed')}, "
                              f"but its name is the key of {cfg} on {noise.to_json()} seed {seed} (edited or misplaced)")
    return ck


def put(path: Path, ckpt: Checkpoint) -> Checkpoint:
    """Write ``ckpt`` at ``path`` (atomically, the arrays before the sidecar) and return it as loaded back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save(path, ckpt)
    return load_as(path, ckpt.cfg, ckpt.noise, ckpt.meta["seed"])


def failure_path(path: Path) -> Path:
    """Where a model that diverged after every retry is recorded (same content key, never a checkpoint)."""
    return Path(path).with_suffix(".diverged.json")


def record_failure(path: Path, record: dict) -> None:
    """Record that the model of ``path`` diverged after every retry (``record["error"]`` says how)."""
    atomic_write(failure_path(path), json.dumps(record, indent=1, sort_keys=True).encode())


def raise_if_failed(path: Path) -> None:
    """A recorded divergence is reported again, not retrained: delete the record to try once more."""
    failure = failure_path(path)
    if failure.exists():
        raise DivergedError(f"{path.name} diverged after every retry (recorded in {failure}; delete it to retrain): "
                            f"{json.loads(failure.read_text()).get('error', '')}")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``'s name (a file in ``.locks/`` beside it), held for the block."""
    lock = path.parent / ".locks" / (path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def study_grid(depths: Sequence[int] = range(1, 8), columns: Sequence[str] = COLUMNS, variants=("gdpp", "diag", "full"), deep_u5: bool = True,
               d: int = 10, n: int = 20, heads: int = 1):
    """The (cfg, noise) pairs of the paper's study: Table 1 (depths 1-7, ten noise settings, three
    variants, one head), plus 8-layer models at ``sigma_max = 5`` for Fig. 5 and 7; or of any other grid
    (``columns`` any noise labels, ``d``, ``n`` and ``heads`` any sizes)."""
    grid = [(ModelConfig(v, L, heads=heads, d=d, n=n), noise_from_label(c)) for c in columns for L in depths for v in variants]
    if deep_u5:
        grid += [(ModelConfig(v, 8, heads=heads, d=d, n=n), noise_from_label("u5")) for v in variants]
    return grid


def logged_seconds(data_dir, profile: str | Profile) -> dict[str, float]:
    """Training seconds by checkpoint name, from ``DATA/PROFILE/train_log.jsonl`` (a line per trained model,
    :mod:`lintx.__main__`): each checkpoint that is still there at its last logged training. Wall seconds, so
    an upper bound on CPU time where processes shared the cores; empty where nothing was logged."""
    folder = Path(data_dir) / get_profile(profile).name
    log = folder / "train_log.jsonl"
    out = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        r = json.loads(line)
        if "checkpoint" in r and (folder / r["checkpoint"]).exists():
            out[r["checkpoint"]] = r["seconds"]
    return out


def stale_files(data_dir, profile: str | Profile, bad: Optional[list] = None) -> list[Path]:
    """Files in ``DATA/PROFILE`` that no current model maps to, so nothing reads them again:

    - a checkpoint (with its sidecar) whose model, noise and seed, under the profile's current recipe,
      warm starts, acceptance and numerics, now have another name (:func:`checkpoint_path`);
    - an ``.npz`` without its sidecar (a crash between the two writes), and a sidecar without its ``.npz``;
    - a divergence record (``.diverged.json``) that is not the current record of a model of the study
      (:func:`study_grid`, at seeds ``0 .. profile.seeds - 1`` and any seed a checkpoint here has).

    Every checkpoint is loaded and verified on the way: a corrupt one is never listed for deletion. It is
    an error naming it, or, where ``bad`` is a list, appended to it as ``(path, message)`` so that every bad
    file is reported, not only the first.
    """
    prof = get_profile(profile)
    folder = Path(data_dir) / prof.name
    stale, seeds = [], set(range(prof.seeds))
    for path in sorted(folder.glob("*.npz")):
        if not is_trained(path):
            stale.append(path)
            continue
        try:
            ckpt = load(path)
        except CheckpointError as e:
            if bad is None:
                raise
            bad.append((path, str(e)))
            continue
        seeds.add(ckpt.meta["seed"])
        if checkpoint_path(data_dir, prof, ckpt.cfg, ckpt.noise, ckpt.meta["seed"]) != path:
            stale += [path, sidecar_path(path)]
    records = set(folder.glob("*.diverged.json"))
    stale += [p for p in sorted(set(folder.glob("*.json")) - records) if not p.with_suffix(".npz").exists()]
    current = {failure_path(checkpoint_path(data_dir, prof, cfg, noise, s)) for cfg, noise in study_grid() for s in sorted(seeds)}
    return stale + sorted(records - current)
