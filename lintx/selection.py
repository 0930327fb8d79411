"""The sequences that judge a seed's training, and how they score a model (:mod:`lintx.fit` uses them).

Two streams of each seed's key are used for nothing else, disjoint from training and from the report's
evaluation sets: the **validation** stream checks a trained model before it is saved (a model can train to a
good loss and still explode on one sequence in 100,000), and the **selection** stream chooses among a
seed's candidates and starts. The wsd schedule (the shipped profile) scores by the adjusted loss there,
drawn once per model and scored in blocks (:func:`selection_scores`); the plain cosine schedule by the raw
loss (:func:`selection_loss`).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import numpy as np

from lintx.checkpoint import Checkpoint
from lintx.method import SELECTION_BLOCKS, SELECTION_NUM, VALIDATION_FACTOR, VALIDATION_SLACK, Profile
from lintx.metrics import draw, evaluate, evaluate_drawn
from lintx.model import Model, ModelConfig
from lintx.tasks import Noise
from lintx.train import check_seed

_VALIDATION_STREAM = 0x5A11D  # folded into the seed's key: a sequence stream used for nothing else
_SELECTION_STREAM = 0x5E1EC  # the same for choosing among a seed's candidates and starts


def _stream_key(seed: int, stream: int) -> jax.Array:
    """The key of one of ``seed``'s own sequence streams."""
    return jax.random.fold_in(jax.random.key(check_seed(seed)), stream)


def _stream_loss(model: Model, noise: Noise, seed: int, stream: int, num: int) -> float:
    """Loss (Eq. 6, last layer) of ``model`` on ``num`` sequences of ``noise`` from one of ``seed``'s own
    sequence streams (validation or selection), used for nothing else. Always with 64-bit JAX off, so the
    sequences do not depend on the process's setting (see :func:`lintx.evaluation.cached`)."""
    with jax.enable_x64(False):
        return float(np.asarray(evaluate(model, noise, _stream_key(seed, stream), num, model.cfg.d, model.cfg.n)["loss"])[-1])


def held_out_loss(ckpt: Checkpoint, num: int) -> float:
    """Loss (Eq. 6, last layer) of a trained model on ``num`` sequences of its seed's validation stream."""
    return _stream_loss(ckpt.model, ckpt.noise, ckpt.meta["seed"], _VALIDATION_STREAM, num)


def held_out_problem(ckpt: Checkpoint, validation_loss: float) -> Optional[str]:
    """Why a trained model must not be saved, or None: a held-out loss that is not finite or is far above
    the training loss (a model that explodes on rare sequences)."""
    final = ckpt.meta["final_loss"]
    if not np.isfinite(validation_loss) or validation_loss > VALIDATION_FACTOR * final + VALIDATION_SLACK:
        return (f"held-out loss {validation_loss:.4g} against final training loss {final:.4g} for {ckpt.cfg} on "
                f"{ckpt.noise.to_json()} seed {ckpt.meta['seed']}: the model explodes on some sequences")
    return None


def selection_loss(model: Model, noise: Noise, seed: int) -> float:
    """Loss of ``model`` on the ``SELECTION_NUM`` sequences of ``seed``'s selection stream; ``inf`` if it is
    not finite there."""
    loss = _stream_loss(model, noise, seed, _SELECTION_STREAM, SELECTION_NUM)
    return loss if np.isfinite(loss) else np.inf


def selection_blocks(noise: Noise, seed: int, d: int, n: int) -> list:
    """``seed``'s selection sequences drawn once (:func:`lintx.metrics.draw`), in the ``SELECTION_BLOCKS``
    blocks that :func:`selection_scores` scores a model on."""
    key = _stream_key(seed, _SELECTION_STREAM)
    with jax.enable_x64(False):
        return [draw(noise, jax.random.fold_in(key, b), SELECTION_NUM // SELECTION_BLOCKS, d, n) for b in range(SELECTION_BLOCKS)]


def selection_scores(models: Sequence[Model], blocks: list) -> np.ndarray:
    """The wsd method's score of each of ``models`` on a seed's selection blocks (:func:`selection_blocks`):
    the adjusted loss (the loss above the oracle's on the same sequences, as Table 1 reports it) over all
    of them. It is a mean, tails included: a model that explodes on one sequence in 50,000 explodes in
    Table 1's sets of 100,000, and must not be chosen. A relative fall of it is a fall of what is left to
    gain, not of the noise's floor. ``inf`` where a block is not finite."""
    with jax.enable_x64(False):
        per_block = np.array([[float(np.asarray(r["adjusted_loss"])[-1]) for r in evaluate_drawn(models, chunks)] for chunks in blocks])
    return np.where(np.all(np.isfinite(per_block), axis=0), np.mean(per_block, axis=0), np.inf)


def selection_score(model: Model, noise: Noise, seed: int) -> float:
    """:func:`selection_scores` of one model on ``seed``'s selection sequences."""
    return float(selection_scores([model], selection_blocks(noise, seed, model.cfg.d, model.cfg.n))[0])


def scorer(prof: Profile) -> Callable[[Model, Noise, int], float]:
    """How ``prof`` compares a seed's candidates and starts: :func:`selection_score` under the wsd schedule,
    else :func:`selection_loss`."""
    return selection_score if prof.budget.schedule == "wsd" else selection_loss


def stack_scores(cfg: ModelConfig, blocks: list, params: dict) -> np.ndarray:
    """:func:`selection_scores` of each of the raw parameters stacked in ``params`` (a wsd training's look)."""
    return selection_scores([Model(cfg, {k: x[i] for k, x in params.items()}) for i in range(len(next(iter(params.values()))))], blocks)
