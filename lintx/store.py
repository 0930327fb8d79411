"""The checkpoint cache in ``data/``: find a trained model or train it, keyed by content.

A checkpoint's file name carries a hash of everything that determines it: the model configuration, the
noise, the training recipe, the seed and the numerics version :data:`lintx.versions.NUMERICS`. So a changed
recipe or changed numerics look for a new name and train anew, while the old file stays (nothing is lost
and nothing stale is reused). A file that exists under the right name is loaded and verified; if it is
corrupt that is an error naming it, never a silent retrain over it.

Training a missing model takes an exclusive lock on its name (``fcntl.flock``), then looks again, so
two processes (``make -j2 figures``) never train or write the same checkpoint twice.

A profile with ``start_from`` warm-starts a model from another checkpoint (its (L-1)-layer version, or
the same depth in a simpler variant), which is found or trained first; the parent's name is part of the
child's hash.

A profile with ``starts`` trains several random initialisations of a seed together and keeps the one with
the lowest loss on held-out selection sequences (:func:`best_start`); the number of starts and of
selection sequences are part of the key.

A profile with ``rival`` trains, for each seed of some models, a second candidate beside the model's own
training: the same depth in a simpler variant (trained or found first, same seed), embedded and fine-tuned
(:func:`best_of`). The one with the lower loss on the seed's held-out selection sequences becomes the
checkpoint, and the sidecar records both losses and which was chosen (``rival``); the rival's parent and
recipe are part of the key.

A profile with ``refine`` polishes a trained model by L-BFGS on a fixed sample of its seed's own
sequences (:mod:`lintx.refine`), in one stage or several in turn, before the held-out check; the
refinement's configuration and the code of ``lintx/refine.py`` are part of the key, and the sidecar
records it (``refine``).

A diverged seed is retried with the learning rate divided by 3, up to twice; what was used is recorded in
the sidecar (``train``, ``retries``). This retry ladder and the held-out check below are keyed too
(:func:`acceptance`): they decide which training becomes the checkpoint. A run counts as diverged if its
training loss went non-finite, or if it fails the held-out check (:func:`held_out_problem`): a model can
train to a good loss and still explode on one sequence in 100,000 (DIAG, 5 layers, ``sigma_max = 2``:
training loss 0.65, evaluation loss 8913 from a single sequence), so every new model is evaluated on
``Profile.validation_num`` fresh sequences (200,000 for ``fast``; a stream of its own, disjoint from
training and from the report's evaluation sets) before it is saved, and the loss there is recorded in the
sidecar (``validation_loss``). If it still diverges, :class:`~lintx.checkpoint.DivergedError` is raised
and the failure is recorded beside where the checkpoint would be (``NAME.diverged.json``), so it is
reported again, not retrained, until that record is deleted. Checkpoints saved before this check existed
carry no ``validation_loss``; ``python -m lintx check`` runs the same check on every checkpoint of a
profile.

A changed recipe or training code leaves the old files behind, unread (the runner only looks up current
names); :func:`stale_files` lists them and ``python -m lintx prune --delete`` removes them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import jax
import numpy as np

from lintx.checkpoint import Checkpoint, CheckpointError, DivergedError, atomic_write, from_training, load, save, sidecar_path
from lintx.metrics import evaluate
from lintx.model import VARIANTS, Model, ModelConfig, to_full
from lintx.profiles import Profile, get_profile
from lintx.refine import RefineConfig, refine
from lintx.reference import COLUMNS
from lintx.tasks import Noise, noise_from_label
from lintx.train import TrainConfig, TrainResult, check_seed, embed, grow, random_init, train, unstack
from lintx.versions import NUMERICS

MAX_RETRIES = 2
RETRY_LR_DIVISOR = 3  # each retry of a diverged seed divides the previous learning rate by this
# held-out check: a model fails if its loss on fresh sequences exceeds this multiple of its final training
# loss plus VALIDATION_SLACK (an absolute floor, so near-noiseless models are not failed for a 1e-6 wobble)
VALIDATION_FACTOR = 1.5
VALIDATION_SLACK = 1e-3
_VALIDATION_STREAM = 0x5A11D  # folded into the seed's key: a sequence stream used for nothing else
_SELECTION_STREAM = 0x5E1EC  # the same for choosing among a seed's random starts
SELECTION_NUM = 50_000  # sequences the starts are compared on (the same ones for every start)
START_STRIDE = 1_000_000  # start k of seed s trains with seed s + k * START_STRIDE (start 0 is the seed itself)


def _stream_loss(model: Model, noise: Noise, seed: int, stream: int, num: int) -> float:
    """Loss (Eq. 6, last layer) of ``model`` on ``num`` sequences of ``noise`` from one of ``seed``'s own
    sequence streams (validation or selection), used for nothing else. Always with 64-bit JAX off, so the
    sequences do not depend on the process's setting (see :func:`lintx.evaluation.cached`)."""
    key = jax.random.fold_in(jax.random.key(check_seed(seed)), stream)
    with jax.enable_x64(False):
        return float(np.asarray(evaluate(model, noise, key, num, model.cfg.d, model.cfg.n)["loss"])[-1])


def held_out_loss(ckpt: Checkpoint, num: int) -> float:
    """Loss (Eq. 6, last layer) of a freshly trained model on ``num`` sequences of its own noise, drawn
    from the validation stream of its seed."""
    return _stream_loss(ckpt.model, ckpt.noise, ckpt.meta["seed"], _VALIDATION_STREAM, num)


def held_out_problem(ckpt: Checkpoint, validation_loss: float) -> Optional[str]:
    """Why a trained model must not be saved, or None: a held-out loss that is not finite or is far above
    the training loss (a model that explodes on rare sequences)."""
    final = ckpt.meta["final_loss"]
    if not np.isfinite(validation_loss) or validation_loss > VALIDATION_FACTOR * final + VALIDATION_SLACK:
        return (f"held-out loss {validation_loss:.4g} against final training loss {final:.4g} for {ckpt.cfg} on "
                f"{ckpt.noise.to_json()} seed {ckpt.meta['seed']}: the model explodes on some sequences")
    return None


# The acceptance policy of the shipped cache: the retry ladder and the held-out check decide which of up to
# three trainings becomes the checkpoint, so they are part of its key. Keys leave the policy out while it
# is this one (the shipped checkpoints were named before it was keyed); any other policy is written into
# the key, so changing it trains anew instead of reusing a checkpoint that a different policy accepted.
ACCEPTANCE_V1 = {"max_retries": 2, "retry_lr_divisor": 3, "validation_factor": 1.5, "validation_slack": 1e-3, "validation_num": 200_000}


def acceptance(prof: Profile) -> dict:
    """How ``prof``'s runner accepts a trained model: retries and the held-out check (keyed, see above)."""
    return {"max_retries": MAX_RETRIES, "retry_lr_divisor": RETRY_LR_DIVISOR, "validation_factor": VALIDATION_FACTOR,
            "validation_slack": VALIDATION_SLACK, "validation_num": prof.validation_num}


def recipe_hash(
    cfg: ModelConfig, noise: Noise, tc: TrainConfig, seed: int, parent: Optional[str] = None, accept: Optional[dict] = None,
    starts: int = 1, rc: Optional[tuple[RefineConfig, ...]] = None, rival: Optional[dict] = None, embedded: Optional[str] = None,
) -> str:
    """Content key of a checkpoint: model, noise, recipe, seed, training code, and where they apply the
    warm start's parent, an acceptance policy other than :data:`ACCEPTANCE_V1`, several random starts and
    a refinement (its stages' configuration; one stage is keyed as a single configuration) and a rival (:func:`rival_key`)."""
    key = {"model": dataclasses.asdict(cfg), "noise": noise.to_json(), "train": tc.to_json(), "seed": check_seed(seed), "numerics": NUMERICS}
    if parent is not None:  # a warm start: the result depends on the checkpoint it was grown from
        key["grown_from"] = parent
    if accept is not None and accept != ACCEPTANCE_V1:
        key["acceptance"] = accept
    if starts != 1:
        key["starts"] = {"starts": starts, "stride": START_STRIDE, "selection_num": SELECTION_NUM}
    if rc is not None:
        how = rc[0].to_json() if len(rc) == 1 else {"stages": [r.to_json() for r in rc]}
        key["refine"] = how
    if rival is not None:
        key["rival"] = rival
    if embedded is not None:  # a second warm start (Profile.embed_from); random starts beside them; starts compete
        key["embedded_from"] = {"name": embedded, "selection_num": SELECTION_NUM, "random_starts": starts, "stride": START_STRIDE}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


def precision(tc: TrainConfig):
    """The JAX setting a recipe trains under (a context manager): 64-bit on for a float64 recipe, off for a
    float32 one, whatever the process's setting. Evaluation stays outside it, in float32, as Table 1's."""
    return jax.enable_x64(tc.dtype == "float64")


def parent_config(prof: Profile, cfg: ModelConfig, noise: Noise) -> Optional[ModelConfig]:
    """The model a profile warm-starts ``cfg`` on ``noise`` from, or None if it is trained from a random start."""
    return prof.start_from(cfg, noise) if prof.start_from is not None else None


def num_starts(prof: Profile, cfg: ModelConfig, noise: Noise) -> int:
    """How many random starts ``prof`` trains for one seed of ``cfg`` on ``noise`` (1 unless ``prof.starts``)."""
    k = 1 if prof.starts is None else prof.starts(cfg, noise)
    least = 0 if prof.embed_from is not None else 1  # the method's random starts come beside its warm ones
    if isinstance(k, bool) or not isinstance(k, int) or k < least:
        raise ValueError(f"profile {prof.name!r}: starts must be an integer >= {least}, got {k!r} for {cfg} on {noise.to_json()}")
    if k > 1 and parent_config(prof, cfg, noise) is not None and prof.embed_from is None:
        raise ValueError(f"profile {prof.name!r}: {cfg} on {noise.to_json()} is warm-started, so it has one start, not {k}")
    return k


def num_candidates(prof: Profile, cfg: ModelConfig, noise: Noise) -> int:
    """How many trainings of ``cfg`` on ``noise`` one seed costs: its random starts, plus with the method
    (``Profile.embed_from``) its warm starts, grown and embedded, trained beside them (:func:`get_or_train`)."""
    k = num_starts(prof, cfg, noise)
    if prof.embed_from is not None:
        k += (parent_config(prof, cfg, noise) is not None) + (embedded_config(prof, cfg) is not None)
    return k


def refine_config(prof: Profile, cfg: ModelConfig, noise: Noise) -> Optional[tuple[RefineConfig, ...]]:
    """The stages by which ``prof`` refines a trained model of ``cfg`` on ``noise`` (:mod:`lintx.refine`,
    each from the result of the one before), or None."""
    rc = None if prof.refine is None else prof.refine(cfg, noise)
    stages = (rc,) if isinstance(rc, RefineConfig) else rc
    if stages is not None and (not isinstance(stages, tuple) or not stages or not all(isinstance(r, RefineConfig) for r in stages)):
        raise TypeError(f"profile {prof.name!r}: refine must give a RefineConfig, a tuple of them or None, got {rc!r} for {cfg}")
    return stages


def rival_config(prof: Profile, cfg: ModelConfig, noise: Noise) -> Optional[tuple[ModelConfig, TrainConfig]]:
    """The rival ``prof`` trains beside each seed of ``cfg`` on ``noise``: the configuration it is embedded
    from and its fine-tune recipe, or None."""
    r = None if prof.rival is None else prof.rival(cfg, noise)
    if r is None:
        return None
    if not (isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], ModelConfig) and isinstance(r[1], TrainConfig)):
        raise TypeError(f"profile {prof.name!r}: rival must give (ModelConfig, TrainConfig) or None, got {r!r} for {cfg}")
    src = r[0]  # VARIANTS runs from the most general (full) to the simplest (gdpp)
    if (src.layers, src.heads, src.d, src.n) != (cfg.layers, cfg.heads, cfg.d, cfg.n) or VARIANTS.index(src.variant) <= VARIANTS.index(cfg.variant):
        raise ValueError(f"profile {prof.name!r}: the rival of {cfg} must start from the same depth in a simpler variant, not {src}")
    if parent_config(prof, cfg, noise) is not None:
        raise ValueError(f"profile {prof.name!r}: {cfg} on {noise.to_json()} is warm-started, so it cannot also have a rival")
    return r


def rival_key(data_dir, prof: Profile, cfg: ModelConfig, noise: Noise, seed: int) -> Optional[dict]:
    """What of the rival goes into a checkpoint's key: its parent's name, its recipe and the selection
    sequences (None without a rival)."""
    r = rival_config(prof, cfg, noise)
    if r is None:
        return None
    return {"from": checkpoint_path(data_dir, prof, r[0], noise, seed).name, "train": r[1].to_json(), "selection_num": SELECTION_NUM}


def best_of(candidates: dict[str, Checkpoint], seed: int, note: Optional[dict] = None) -> Checkpoint:
    """The candidate (``{"own": ..., "rival": ...}``, each accepted) with the lower loss on the same
    :data:`SELECTION_NUM` sequences of ``seed``'s selection stream, as for random starts; its sidecar
    records every candidate's loss there, which was chosen and ``note`` (``rival``)."""
    losses = {name: _selection_loss(ckpt.model, ckpt.noise, seed) for name, ckpt in candidates.items()}
    chosen = min(losses, key=losses.get)
    record = {"selection_losses": {k: (float(v) if np.isfinite(v) else None) for k, v in losses.items()}, "chosen": chosen, **(note or {})}
    return dataclasses.replace(candidates[chosen], meta={**candidates[chosen].meta, "rival": record})


def refined(ckpt: Checkpoint, stages: tuple[RefineConfig, ...]) -> Checkpoint:
    """``ckpt`` after :func:`lintx.refine.refine` with its seed's sample, stage after stage; the sidecar
    records how (``refine``: the configuration and the loss on the sample before and after; with several
    stages, ``{"stages": [...]}`` of those)."""
    params, done = ckpt.model.params, []
    for rc in stages:
        params, info = refine(ckpt.cfg, ckpt.noise, params, ckpt.meta["seed"], rc)
        done.append({**rc.to_json(), **info})
    P, Q = (np.asarray(m) for m in to_full(ckpt.cfg, params))
    return dataclasses.replace(ckpt, P=P, Q=Q, meta={**ckpt.meta, "refine": done[0] if len(done) == 1 else {"stages": done}})


def start_seeds(seed: int, starts: int) -> tuple[int, ...]:
    """The training seeds of a seed's random starts: the seed itself, then ``seed + k * START_STRIDE``."""
    return tuple(check_seed(seed) + k * START_STRIDE for k in range(starts))


def selection_losses(cfg: ModelConfig, noise: Noise, seed: int, result: TrainResult) -> np.ndarray:
    """Loss (Eq. 6, last layer) of each start in ``result`` on the same :data:`SELECTION_NUM` sequences of the
    seed's selection stream; ``inf`` for a start that diverged or is not finite there."""
    out = np.full(len(result.seeds), np.inf)
    for i in range(len(result.seeds)):
        if not result.diverged[i]:
            out[i] = _selection_loss(Model(cfg, unstack(result, i)), noise, seed)
    return out


def _selection_loss(model: Model, noise: Noise, seed: int) -> float:
    """Loss of ``model`` on the :data:`SELECTION_NUM` sequences of ``seed``'s selection stream; ``inf`` if it
    is not finite there (random starts, :func:`selection_losses`; rivals, :func:`best_of`)."""
    loss = _stream_loss(model, noise, seed, _SELECTION_STREAM, SELECTION_NUM)
    return loss if np.isfinite(loss) else np.inf


def best_start(cfg: ModelConfig, noise: Noise, tc: TrainConfig, seed: int, result: TrainResult) -> Checkpoint:
    """The checkpoint of ``seed`` from a training of its random starts: the start with the lowest selection
    loss (:func:`selection_losses`); with one start, that start. Raises ``DivergedError`` if all diverged."""
    if len(result.seeds) == 1:
        return from_training(cfg, noise, tc, result, 0)
    losses = selection_losses(cfg, noise, seed, result)
    i = int(np.argmin(losses))
    ckpt = from_training(cfg, noise, tc, result, i)  # DivergedError if every start diverged
    meta = {**ckpt.meta, "seed": seed, "start": i, "start_seed": result.seeds[i],
            "selection_losses": [float(x) if np.isfinite(x) else None for x in losses]}
    return dataclasses.replace(ckpt, meta=meta)


def against_starts(ckpt: Checkpoint, init: list, seed: int) -> Checkpoint:
    """``ckpt``, or the untrained start in ``init`` (raw parameters of ``ckpt.cfg``, :func:`warm_start`) with a
    lower loss on the seed's selection sequences, so training never makes a model worse than where it
    started there (:mod:`lintx.method`). The sidecar records the starts' losses (``start_losses``) and, if
    one was kept, which (``kept_start``, its index in ``init``; training's ``start`` says which start the
    trained candidate came from)."""
    known = ckpt.meta.get("selection_losses")  # computed already where several candidates trained
    trained = known[ckpt.meta["start"]] if known else _selection_loss(ckpt.model, ckpt.noise, seed)
    trained = np.inf if trained is None else trained
    losses = [_selection_loss(Model(ckpt.cfg, params), ckpt.noise, seed) for params in init]
    meta = {**ckpt.meta, "trained_selection_loss": float(trained) if np.isfinite(trained) else None,
            "start_losses": [float(x) if np.isfinite(x) else None for x in losses]}
    i = int(np.argmin(losses))
    if not losses[i] < trained:
        return dataclasses.replace(ckpt, meta=meta)
    P, Q = (np.asarray(m).astype(ckpt.P.dtype) for m in to_full(ckpt.cfg, init[i]))
    return dataclasses.replace(ckpt, P=P, Q=Q, meta={**meta, "kept_start": i})


def kept_start(cfg: ModelConfig, noise: Noise, tc: TrainConfig, seed: int, warm: list, problem: str, retries: int,
               validation_num: int) -> Checkpoint:
    """The checkpoint of a model whose every training diverged (``problem``, after ``retries``): the warm start
    in ``warm`` (raw parameters: the grown model, the embedded one) with the lowest loss on the seed's
    selection sequences. Those are trained models already accepted (the parent with one more layer near
    zero, or the simpler variant exactly), so the method never loses a model a start already has. Its
    ``final_loss`` is that selection loss (there was no training to take it from); the sidecar says why
    (``trained``) and which start was kept (``kept_start``, its ``start_losses``)."""
    losses = [_selection_loss(Model(cfg, params), noise, seed) for params in warm]
    i = int(np.argmin(losses))
    P, Q = (np.asarray(m, np.float32) for m in to_full(cfg, warm[i]))
    meta = {"seed": seed, "train": tc.to_json(), "steps": tc.steps, "final_loss": float(losses[i]), "skipped_steps": 0,
            "retries": retries, "kept_start": i, "start_losses": [float(x) if np.isfinite(x) else None for x in losses],
            "trained": f"every candidate diverged: {problem}"}
    ckpt = Checkpoint(cfg, noise, P, Q, meta)
    return dataclasses.replace(ckpt, meta={**meta, "validation_loss": held_out_loss(ckpt, validation_num)})


def warm_start(cfg: ModelConfig, noise: Noise, parent: Checkpoint, seed: int, tc: TrainConfig) -> dict:
    """Starting parameters of ``cfg`` from a trained ``parent``: grown by one layer or embedded."""
    if parent.cfg.variant == cfg.variant and parent.cfg.layers == cfg.layers - 1:
        return grow(cfg, noise, parent.model.params, seed, tc)
    return embed(cfg, parent.cfg, parent.model.params)


def embedded_config(prof: Profile, cfg: ModelConfig) -> Optional[ModelConfig]:
    """The model of a simpler variant that ``prof`` also warm-starts ``cfg`` from (embedded), or None."""
    return prof.embed_from(cfg) if prof.embed_from is not None else None


def checkpoint_path(data_dir, profile: str | Profile, cfg: ModelConfig, noise: Noise, seed: int) -> Path:
    prof = get_profile(profile) if isinstance(profile, str) else profile
    tc = prof.recipe(cfg, noise)
    shallow, simpler = parent_config(prof, cfg, noise), embedded_config(prof, cfg)
    parent = None if shallow is None else checkpoint_path(data_dir, prof, shallow, noise, seed).name
    embedded = None if simpler is None else checkpoint_path(data_dir, prof, simpler, noise, seed).name
    key = recipe_hash(cfg, noise, tc, seed, parent, acceptance(prof), num_starts(prof, cfg, noise), refine_config(prof, cfg, noise),
                      rival_key(data_dir, prof, cfg, noise, seed), embedded)
    name = f"{cfg.variant}-L{cfg.layers}-H{cfg.heads}-{noise.label}-s{seed}-{key}.npz"
    return Path(data_dir) / prof.name / name


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


def failure_path(path: Path) -> Path:
    """Where a model that diverged after every retry is recorded (same content key, never a checkpoint)."""
    return Path(path).with_suffix(".diverged.json")


def recorded_failure(data_dir, profile: str | Profile, cfg: ModelConfig, noise: Noise, seed: int) -> Optional[Path]:
    """The divergence record that keeps ``(profile, cfg, noise, seed)`` from being trained: its own, or that of
    a warm-start parent it would need and that does not exist (followed up the chain); None if there is none."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    path = checkpoint_path(data_dir, prof, cfg, noise, seed)
    if is_trained(path):
        return None
    if failure_path(path).exists():
        return failure_path(path)
    parent = parent_config(prof, cfg, noise)
    return None if parent is None else recorded_failure(data_dir, prof, parent, noise, seed)


def _raise_if_failed(path: Path) -> None:
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


def get_or_train(
    data_dir,
    profile: str,
    cfg: ModelConfig,
    noise: Noise,
    seed: int,
    callback: Optional[Callable[[int, object], None]] = None,
    log: Optional[Callable[[dict], None]] = None,
) -> Checkpoint:
    """The checkpoint of ``(profile, cfg, noise, seed)``: loaded from ``data_dir`` or trained and saved.

    ``log(record)`` receives one dict per model trained (name, seconds, final loss, retries).
    """
    prof = get_profile(profile)
    path = checkpoint_path(data_dir, prof, cfg, noise, seed)
    if is_trained(path):
        return load_as(path, cfg, noise, seed)
    _raise_if_failed(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):
        if is_trained(path):  # trained by another process while we waited
            return load_as(path, cfg, noise, seed)
        _raise_if_failed(path)
        tc = prof.recipe(cfg, noise)
        if tc.dtype == "float64" and cfg.variant != "full":
            # the diagonal form of a DIAG or GD++ checkpoint is verified exactly (lintx.model.from_full), which
            # float64 weights fail in a float32 process; FULL has no form to verify
            raise ValueError(f"profile {prof.name!r}: a float64 recipe is supported for FULL only, not {cfg.variant!r}")
        shallow, starts, rc = parent_config(prof, cfg, noise), num_starts(prof, cfg, noise), refine_config(prof, cfg, noise)
        init, parent, simpler = None, None, embedded_config(prof, cfg)
        if shallow is not None:  # warm start: train (or load) the shallower model first, then grow it
            parent = get_or_train(data_dir, profile, shallow, noise, seed, callback, log)
            init = [warm_start(cfg, noise, parent, seed, tc)]
        warm = 0
        if prof.embed_from is not None:  # the method: every start at once (lintx.method)
            if simpler is not None:  # the simpler variant of this depth, embedded
                init = [*(init or []), warm_start(cfg, noise, get_or_train(data_dir, profile, simpler, noise, seed, callback, log), seed, tc)]
            warm = len(init or [])
            random = start_seeds(seed, warm + starts)[warm:]  # and the random starts, after the warm ones
            init = [*(init or []), *(random_init(cfg, noise, tc, s) for s in random)]
            starts = len(init)
        start = time.perf_counter()
        ckpt, problem, validation_loss, retry, result, tc = _accepted(prof, cfg, noise, seed, tc, starts, rc, init, callback)
        if ckpt is not None and prof.embed_from is not None and init is not None:
            ckpt = against_starts(ckpt, init, seed)
        elif ckpt is None and prof.embed_from is not None and warm:  # every training diverged: the best warm start
            ckpt, problem = kept_start(cfg, noise, tc, seed, init[:warm], problem, retry, prof.validation_num), None
        rival = rival_config(prof, cfg, noise)
        if rival is not None:  # a second candidate: the simpler model of this depth and seed, fine-tuned as cfg
            ckpt = _with_rival(data_dir, prof, cfg, noise, seed, ckpt, problem, rival, callback, log)
            problem = None if ckpt is not None else problem
        if problem is not None:
            record = {"error": problem, "retries": retry, "train": tc.to_json(), "final_loss": float(np.min(result.final_loss)),
                      "validation_loss": validation_loss, "skipped_steps": int(np.min(result.skipped_steps)),
                      "seconds": round(time.perf_counter() - start, 2)}
            atomic_write(failure_path(path), json.dumps(record, indent=1, sort_keys=True).encode())
            raise DivergedError(problem)
        meta = {**ckpt.meta, "profile": prof.name, "validation_num": prof.validation_num}
        if parent is not None:
            meta["grown_from"] = checkpoint_path(data_dir, prof, shallow, noise, seed).name
        if simpler is not None:
            meta["embedded_from"] = checkpoint_path(data_dir, prof, simpler, noise, seed).name
        ckpt = dataclasses.replace(ckpt, meta=meta)
        save(path, ckpt)
        if log is not None:
            log({"checkpoint": path.name, "profile": prof.name, "seconds": round(time.perf_counter() - start, 2),
                 "final_loss": ckpt.meta["final_loss"], "validation_loss": ckpt.meta["validation_loss"], "retries": ckpt.meta["retries"],
                 "steps": ckpt.meta["train"]["steps"], "starts": starts,
                 **({} if rival is None else {"rival": ckpt.meta["rival"]["chosen"]}),
                 **({"start": ckpt.meta.get("start", 0), "kept_start": ckpt.meta.get("kept_start")} if prof.embed_from is not None else {})})
        return load_as(path, cfg, noise, seed)


def _accepted(prof: Profile, cfg: ModelConfig, noise: Noise, seed: int, tc: TrainConfig, starts: int,
              rc: Optional[tuple[RefineConfig, ...]], init: Optional[list], callback) -> tuple:
    """One candidate of ``(cfg, noise, seed)`` through the acceptance policy: trained with ``tc`` (its random
    starts, from ``init`` if given), refined by ``rc``, held-out checked, and retried at a lower learning rate
    while it diverges. Returns ``(checkpoint or None, problem or None, validation loss, retries, the last
    TrainResult, the last recipe)``; the checkpoint's meta has ``retries`` and ``validation_loss``."""
    for retry in range(MAX_RETRIES + 1):
        try:
            with precision(tc):  # training and gathering the weights; the held-out check is float32
                result = train(cfg, noise, tc, seeds=start_seeds(seed, starts), callback=callback, init=init)
                ckpt = best_start(cfg, noise, tc, seed, result)  # raises DivergedError if training diverged
            if rc is not None:
                ckpt = refined(ckpt, rc)
            validation_loss = held_out_loss(ckpt, prof.validation_num)
            problem = held_out_problem(ckpt, validation_loss)
            problem = problem and problem + "; not saving it"
        except DivergedError as e:
            problem, validation_loss = str(e), None
        if problem is None:
            return dataclasses.replace(ckpt, meta={**ckpt.meta, "retries": retry, "validation_loss": validation_loss}), None, validation_loss, retry, result, tc
        if retry < MAX_RETRIES:
            tc = dataclasses.replace(tc, lr=tc.lr / RETRY_LR_DIVISOR)
    return None, problem, validation_loss, retry, result, tc


def _with_rival(data_dir, prof: Profile, cfg: ModelConfig, noise: Noise, seed: int, own: Optional[Checkpoint],
                problem: Optional[str], rival: tuple[ModelConfig, TrainConfig], callback, log) -> Optional[Checkpoint]:
    """The better of ``own`` (None if it diverged: ``problem``) and the rival of ``(cfg, noise, seed)`` (its
    parent found or trained first, embedded, fine-tuned and accepted like any model), :func:`best_of`; None
    if neither was accepted. A parent or a rival that diverges leaves the other candidate, and the sidecar
    says why (``rival``)."""
    src_cfg, rtc = rival
    parent_name = checkpoint_path(data_dir, prof, src_cfg, noise, seed).name
    candidates, failed = {}, {}
    if own is not None:
        candidates["own"] = own
    else:
        failed["own"] = problem
    try:
        src = get_or_train(data_dir, prof.name, src_cfg, noise, seed, callback, log)
    except DivergedError as e:
        failed["rival"] = f"its parent {parent_name} diverged: {e}"
    else:
        riv, why, *_ = _accepted(prof, cfg, noise, seed, rtc, 1, None, [warm_start(cfg, noise, src, seed, rtc)], callback)
        if riv is not None:
            candidates["rival"] = riv
        else:
            failed["rival"] = why
    if not candidates:
        return None
    return best_of(candidates, seed, {"from": parent_name, **({"failed": failed} if failed else {})})


def study_grid(depths: Sequence[int] = range(1, 8), columns: Sequence[str] = COLUMNS, variants=("gdpp", "diag", "full"), deep_u5: bool = True,
               d: int = 10, n: int = 20):
    """The (cfg, noise) pairs of the paper's study: Table 1 (depths 1-7, ten noise settings, three
    variants), plus 8-layer models at ``sigma_max = 5`` for Fig. 5 and 7; or of any other grid (``columns``
    any noise labels, ``d`` and ``n`` any sizes)."""
    grid = [(ModelConfig(v, L, d=d, n=n), noise_from_label(c)) for c in columns for L in depths for v in variants]
    if deep_u5:
        grid += [(ModelConfig(v, 8, d=d, n=n), noise_from_label("u5")) for v in variants]
    return grid


def checkpoints(data_dir, profile: str, cfg: ModelConfig, noise, seeds: Sequence[int], train_missing: bool = True,
                extra_seeds: Sequence[int] = ()) -> list[tuple[int, Path]]:
    """``(seed, path)`` of each seed's checkpoint in ``data_dir``; a missing one is trained (and cached)
    if ``train_missing``, else left out. ``extra_seeds`` are used where ``data_dir`` has them and never
    trained (the shipped cache has 5 seeds at ``sigma_max = 5``; a figure asks for seed 0 and uses the
    others where they exist). A model whose training diverged after every retry is left out. A spare seed
    of the profile (:attr:`lintx.profiles.Profile.spare_seeds`) counts only in place of one of the
    profile's seeds that is not found, so a cell is never the best of more than ``Profile.seeds``."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    spares = range(prof.seeds, prof.seeds + prof.spare_seeds)
    found = []
    extra = [s for s in extra_seeds if s not in seeds]
    for s in [*seeds, *extra]:
        path = checkpoint_path(data_dir, profile, cfg, noise, s)
        if not is_trained(path):
            if not train_missing or s in extra or recorded_failure(data_dir, profile, cfg, noise, s) is not None:
                continue
            try:
                get_or_train(data_dir, profile, cfg, noise, s)
            except DivergedError:  # recorded by the store; reported as missing
                continue
        found.append((s, path))
    room = prof.seeds - sum(s < prof.seeds for s, _ in found)  # the profile's seeds not found
    used = [s for s, _ in found if s in spares][:max(room, 0)]
    return [(s, p) for s, p in found if s not in spares or s in used]


def stale_files(data_dir, profile: str | Profile, bad: Optional[list] = None) -> list[Path]:
    """Files in ``DATA/PROFILE`` that no current model maps to, so nothing reads them again:

    - a checkpoint (with its sidecar) whose model, noise and seed, under the profile's current recipe,
      warm start, acceptance policy and numerics, now have another name (:func:`checkpoint_path`);
    - an ``.npz`` without its sidecar (a crash between the two writes), and a sidecar without its ``.npz``;
    - a divergence record (``.diverged.json``) that is not the current record of a model of the study
      (:func:`study_grid`, at seeds ``0 .. profile.seeds + profile.spare_seeds - 1`` and any seed a checkpoint
      here has).

    Every checkpoint is loaded and verified on the way: a corrupt one is never listed for deletion. It is
    an error naming it, or, where ``bad`` is a list, appended to it as ``(path, message)`` so that every bad
    file is reported, not only the first.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    folder = Path(data_dir) / prof.name
    stale, seeds = [], set(range(prof.seeds + prof.spare_seeds))
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
