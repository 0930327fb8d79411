"""lintx: reproduction of "Linear Transformers are Versatile In-Context Learners" (NeurIPS 2024).

Modules, one per concern: :mod:`~lintx.tasks` (data, Sec. 2.2), :mod:`~lintx.model` (FULL / DIAG / GD++,
Sec. 2.1, 5), :mod:`~lintx.ridge` (ridge and baselines), :mod:`~lintx.metrics` (losses on one set),
:mod:`~lintx.implicit` (Theorem 4.1 / Lemma 4.3), :mod:`~lintx.train` (Adam training),
:mod:`~lintx.method` (the training method and its budgets), :mod:`~lintx.fit` (training what the
method plans), :mod:`~lintx.selection` (the sequences that check and choose a seed's models),
:mod:`~lintx.checkpoint` (npz + JSON sidecar), :mod:`~lintx.store` (the checkpoint cache),
:mod:`~lintx.evaluation` (the evaluation protocol and its cache), :mod:`~lintx.table1` and
:mod:`~lintx.table1_text` (Table 1), :mod:`~lintx.reference` (the paper's Table 1).
"""

__version__ = "0.1.0"

from lintx.checkpoint import Checkpoint, CheckpointError, DivergedError, from_training, load, save
from lintx.implicit import ImplicitModel, implicit_model, implicit_tokens
from lintx.metrics import adjusted_loss, evaluate, loss, variance_profile
from lintx.model import VARIANTS, Model, ModelConfig, from_full, predict, to_full, trajectory, w_matrix
from lintx.reference import paper_table1
from lintx.ridge import AdaRR, ConstRR, TunedRR, oracle_predict, ridge_predict, tune_baselines
from lintx.tasks import Batch, Categorical, Fixed, Uniform, noise_from_json, noise_from_label, sample_batch
from lintx.recipe import TrainConfig
from lintx.train import TrainResult, train

__all__ = [
    "AdaRR", "Batch", "Categorical", "Checkpoint", "CheckpointError", "ConstRR", "DivergedError", "Fixed",
    "ImplicitModel", "Model", "ModelConfig", "TrainConfig", "TrainResult", "TunedRR", "Uniform", "VARIANTS",
    "adjusted_loss", "evaluate", "from_full", "from_training", "implicit_model", "implicit_tokens", "load",
    "loss", "noise_from_json", "noise_from_label", "oracle_predict", "paper_table1", "predict",
    "ridge_predict", "sample_batch", "save", "to_full", "train", "trajectory", "tune_baselines", "variance_profile",
    "w_matrix",
]
