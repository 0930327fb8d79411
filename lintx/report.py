"""Table 1: our adjusted losses beside the paper's, from the checkpoints in ``data/``; evaluation cache.

Evaluations are cached as small JSON files in ``DATA/evals/``, keyed by what determines them: the
predictor (a checkpoint's SHA-256, or a baseline's tuned parameters), the noise, the evaluation seed and
size, and a hash of the evaluation code. Re-rendering a table or figure does not re-evaluate.

Tolerances (issue 3): a model cell is within tolerance when the best seed is at most
``1.10 * paper + 0.001``; in the noiseless column ``u0`` at 4+ layers, where the paper reports 1e-4 to
1e-12, when it is at most ``10 * paper``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lintx import metrics, theory
from lintx.checkpoint import DivergedError, atomic_write, load, read_sidecar
from lintx.metrics import EVAL_CHUNK, evaluate
from lintx.reference import COLUMNS, paper_table1
from lintx.ridge import AdaRR, ConstRR, TunedRR, tune_baselines
from lintx.profiles import get_profile
from lintx.store import checkpoint_path, get_or_train, locked, recorded_failure
from lintx.model import ModelConfig
from lintx.tasks import Fixed, noise_from_label, sample_batch
from lintx.versions import code_version

EVAL_MODULES = ("metrics.py", "ridge.py", "tasks.py", "model.py")
THEORY_MODULES = ("theory.py", "implicit.py")  # keyed, beside EVAL_MODULES, for the theory notebook's numbers
METHODS = ("GDPP", "DIAG", "FULL")


def _eval_code() -> str:
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / m).read_bytes() for m in EVAL_MODULES)).hexdigest()[:16]


def cached(cache_dir, key: dict, compute):
    """``compute()`` (a JSON-able dict), cached under a hash of ``key`` plus the evaluation code; computed
    under a lock on that name, so concurrent processes compute each value once.

    ``compute()`` runs with 64-bit JAX off, whatever the process's setting: the noise samplers draw other
    values with it on (``jax.random.uniform`` and ``randint`` follow the default dtype), so the same key
    would give another evaluation set, and a cached value would be reused for a set it was not computed on.
    Every evaluation of Table 1 and the figures is float32, as the models are evaluated (float64 FULL
    weights are cast)."""
    key = {**key, "eval_code": _eval_code()}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"{digest}.json"
    value = _stored(path, key)
    if value is not None:
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):  # two notebooks (make -j2) asking for the same evaluation: one computes, one waits
        value = _stored(path, key)
        if value is None:
            with jax.enable_x64(False):
                value = compute()
            atomic_write(path, json.dumps({"key": key, "value": value}, sort_keys=True).encode())
    return value


def _stored(path: Path, key: dict):
    """The cached value at ``path`` if it was stored under exactly ``key``, else None."""
    if path.exists():
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            return stored["value"]
    return None


def stale_evaluations(data_dir, ignore: Sequence[Path] = ()) -> list[Path]:
    """Entries of the evaluation cache ``DATA/evals`` that nothing will read again: computed by other
    evaluation code (:func:`_eval_code`) or theory code (``THEORY_MODULES``) or unreadable, or of a checkpoint that is in no ``DATA/PROFILE/``
    folder (its SHA-256 in no sidecar there; checkpoints in ``ignore``, about to be deleted, do not count).
    Baselines' entries are kept while the evaluation code is current."""
    ignore = {Path(p) for p in ignore}
    shas = {read_sidecar(p)["npz_sha256"] for p in Path(data_dir).glob("*/*.npz") if p not in ignore}
    code, theory_code, stale = _eval_code(), code_version(THEORY_MODULES), []
    for path in sorted(Path(data_dir, "evals").glob("*.json")):
        try:
            key = json.loads(path.read_text()).get("key", {})
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):  # unreadable: never a cache hit
            key = {}
        predictor = key.get("predictor", "")
        checkpoint = isinstance(predictor, str) and len(predictor) == 64 and all(c in "0123456789abcdef" for c in predictor)
        theory_stale = "theory_code" in key and key["theory_code"] != theory_code
        if key.get("eval_code") != code or theory_stale or (checkpoint and predictor not in shas):
            stale.append(path)
    return stale


def _tolist(r: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in r.items()}


def evaluate_checkpoint(data_dir, path, eval_seed: int, num: int, noise=None) -> dict:
    """Adjusted loss per layer of a checkpoint (on its own noise unless ``noise`` is given), cached."""
    ck = load(path)
    noise = noise or ck.noise
    key = {"predictor": ck.meta["npz_sha256"], "noise": noise.to_json(), "eval_seed": eval_seed, "num": num, "chunk": EVAL_CHUNK}
    return cached(Path(data_dir) / "evals", key, lambda: _tolist(evaluate(ck.model, noise, jax.random.key(eval_seed), num)))


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
        if not path.exists():
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


def readouts(data_dir, profile: str, cfg: ModelConfig, noise, seeds: Sequence[int], eval_seed: int, num: int,
             train_missing: bool = True, extra_seeds: Sequence[int] = ()) -> np.ndarray:
    """Adjusted loss of the prediction read after each layer, for every seed found: ``(S, L)`` (Fig. 1, 3, 5)."""
    rows = [evaluate_checkpoint(data_dir, p, eval_seed, num)["adjusted_loss"]
            for _, p in checkpoints(data_dir, profile, cfg, noise, seeds, train_missing, extra_seeds)]
    return np.array(rows, np.float64).reshape(len(rows), cfg.layers)


def best_losses(data_dir, profile: str, variant: str, noise, depths: Sequence[int], seeds: Sequence[int], eval_seed: int,
                num: int, train_missing: bool = True, extra_seeds: Sequence[int] = ()) -> np.ndarray:
    """Adjusted loss of the best seed at each depth (the last layer's readout; NaN where no seed was found):
    the curves of Fig. 1 and 3 and the models of Table 1."""
    rows = [readouts(data_dir, profile, ModelConfig(variant, L), noise, seeds, eval_seed, num, train_missing, extra_seeds) for L in depths]
    return np.array([r[:, -1].min() if len(r) else np.nan for r in rows], np.float64)


def profile_checkpoint(data_dir, path, sigmas: Sequence[float], eval_seed: int, num: int) -> dict:
    """Per-variance profile of a checkpoint, cached: ``loss``, ``adjusted_loss``... each ``(len(sigmas), L)``."""
    ck = load(path)
    key = {"predictor": ck.meta["npz_sha256"], "profile_sigmas": [float(x) for x in sigmas], "eval_seed": eval_seed, "num": num, "chunk": EVAL_CHUNK}
    return cached(Path(data_dir) / "evals", key, lambda: _tolist(metrics.profile(ck.model, sigmas, jax.random.key(eval_seed), num)))


def profiles(data_dir, profile: str, cfg: ModelConfig, noise, seeds: Sequence[int], sigmas: Sequence[float],
             eval_seed: int, num: int, train_missing: bool = True, extra_seeds: Sequence[int] = ()) -> dict:
    """Per-variance profiles of every seed found: each value ``(S, len(sigmas), L)`` (Fig. 2, 3, 6, 7)."""
    found = [profile_checkpoint(data_dir, p, sigmas, eval_seed, num)
             for _, p in checkpoints(data_dir, profile, cfg, noise, seeds, train_missing, extra_seeds)]
    shapes = {"loss": cfg.layers, "oracle_loss": 1, "adjusted_loss": cfg.layers}  # the oracle has no layers
    # (0, len(sigmas), ...) when no seed was found (every one diverged, or none trained and train_missing off)
    return {k: np.array([f[k] for f in found], np.float64).reshape(len(found), len(sigmas), w) for k, w in shapes.items()}


def baseline_profile(data_dir, name: str, baseline, sigmas: Sequence[float], eval_seed: int, num: int) -> dict:
    """Per-variance profile of a baseline, cached: each value ``(len(sigmas),)``."""
    key = {"predictor": repr(baseline), "name": name, "profile_sigmas": [float(x) for x in sigmas], "eval_seed": eval_seed, "num": num, "chunk": EVAL_CHUNK}
    return {k: np.asarray(v) for k, v in cached(Path(data_dir) / "evals", key, lambda: _tolist(metrics.profile(baseline, sigmas, jax.random.key(eval_seed), num))).items()}


def best_checkpoint(data_dir, profile: str, cfg: ModelConfig, noise, seeds: Sequence[int], eval_seed: int, num: int,
                    train_missing: bool = True, extra_seeds: Sequence[int] = ()):
    """Path of the seed with the lowest adjusted loss on ``noise`` (the model Table 1 reports), or None."""
    found = checkpoints(data_dir, profile, cfg, noise, seeds, train_missing, extra_seeds)
    if not found:
        return None
    return min((evaluate_checkpoint(data_dir, p, eval_seed, num)["adjusted_loss"][-1], str(p)) for _, p in found)[1]


def baseline_losses(data_dir, label: str, eval_seed: int, num: int, tune_num: int = 100_000) -> dict:
    """Adjusted loss of CONSTRR, ADARR, TUNEDRR (tuned for ``label``) on the evaluation set, cached."""
    return {name: float(evaluate_baseline(data_dir, name, b, label, eval_seed, num)["adjusted_loss"])
            for name, b in tuned_baselines(data_dir, label, num=tune_num).items()}


def baseline_profiles(data_dir, label: str, sigmas: Sequence[float], eval_seed: int, num: int, tune_num: int = 100_000) -> dict:
    """Per-variance profiles of the three baselines tuned for ``label``: ``{name: {"loss": ..., ...}}``."""
    return {name: baseline_profile(data_dir, name, b, sigmas, eval_seed, num)
            for name, b in tuned_baselines(data_dir, label, num=tune_num).items()}


def tuned_baselines(data_dir, label: str, tune_seed: int = 1, num: int = 100_000) -> dict:
    """CONSTRR, ADARR, TUNEDRR for a noise setting, tuned on sequences of ``tune_seed`` (cached)."""
    noise = noise_from_label(label)

    def tune():
        b = tune_baselines(noise, jax.random.key(tune_seed), num)
        return {"CONSTRR": {"s2": b["CONSTRR"].s2}, "TUNEDRR": {"multiplier": b["TUNEDRR"].multiplier, "threshold": b["TUNEDRR"].threshold}}

    p = cached(Path(data_dir) / "evals", {"tune": noise.to_json(), "tune_seed": tune_seed, "num": num}, tune)
    return {"CONSTRR": ConstRR(p["CONSTRR"]["s2"]), "ADARR": AdaRR(), "TUNEDRR": TunedRR(p["TUNEDRR"]["multiplier"], p["TUNEDRR"]["threshold"])}


def evaluate_baseline(data_dir, name: str, baseline, label: str, eval_seed: int, num: int) -> dict:
    noise = noise_from_label(label)
    key = {"predictor": repr(baseline), "name": name, "noise": noise.to_json(), "eval_seed": eval_seed, "num": num, "chunk": EVAL_CHUNK}
    return cached(Path(data_dir) / "evals", key, lambda: _tolist(evaluate(baseline, noise, jax.random.key(eval_seed), num)))


# The theory notebook's numbers (lintx.theory), cached like the evaluations. float32 results differ in their
# last bits between CPUs, so computed afresh on another machine the theory figures would get other bytes;
# cached (and shipped), every machine draws them from the same numbers, as it does the other figures.


def _theory_cached(data_dir, key: dict, compute) -> dict:
    return cached(Path(data_dir) / "evals", {**key, "theory_code": code_version(THEORY_MODULES)}, lambda: _tolist(compute()))


def implicit_gap(data_dir, noise, eval_seed: int, num: int, ck=None, layers: int = 0, heads: int = 0,
                 p_std: float = 0.05, q_std: float = 0.0025) -> np.ndarray:
    """Theorem 4.1 (:func:`lintx.theory.implicit_gap`) on ``num`` sequences of ``noise``, cached: ``(L,)``.

    For the checkpoint ``ck``, or (``ck=None``) for random FULL weights with ``layers`` layers and
    ``heads`` heads (``P`` std ``p_std``, ``Q`` std ``q_std``, drawn from the evaluation key folded with ``heads``)."""
    key = {"theory": "implicit_gap", "noise": noise.to_json(), "eval_seed": eval_seed, "num": num}
    if ck is not None:
        key["predictor"] = ck.meta["npz_sha256"]
    else:
        key.update(layers=layers, heads=heads, p_std=p_std, q_std=q_std)

    def compute():
        tokens = sample_batch(jax.random.key(eval_seed), noise, num).tokens
        if ck is not None:
            P, Q = jnp.asarray(ck.P), jnp.asarray(ck.Q)
        else:
            k1, k2 = jax.random.split(jax.random.fold_in(jax.random.key(eval_seed), heads))
            shape = (layers, heads, tokens.shape[-1], tokens.shape[-1])
            P, Q = p_std * jax.random.normal(k1, shape), q_std * jax.random.normal(k2, shape)
        return {"gap": theory.implicit_gap(P, Q, tokens)}

    return np.asarray(_theory_cached(data_dir, key, compute)["gap"])


def quadratic_similarity(data_dir, ck, ns: Sequence[int], eval_seed: int, num: int) -> np.ndarray:
    """Theorem 4.2 (:func:`lintx.theory.quadratic_similarity`) of a checkpoint ``ck`` for each context length in
    ``ns``, cached: ``(len(ns), L)``."""
    ns = [int(n) for n in ns]
    key = {"theory": "quadratic_similarity", "predictor": ck.meta["npz_sha256"], "ns": ns, "eval_seed": eval_seed, "num": num}
    compute = lambda: {"sim": np.stack([theory.quadratic_similarity(jnp.asarray(ck.P), jnp.asarray(ck.Q), ck.cfg.n, n, jax.random.key(eval_seed), num) for n in ns])}  # noqa: E731
    return np.asarray(_theory_cached(data_dir, key, compute)["sim"])


def gdpp_relative_errors(data_dir, kappa: float, layers: Sequence[int], eval_seed: int, stream: int, num: int = 64) -> np.ndarray:
    """Theorem 5.1 (:func:`lintx.theory.gdpp_relative_error`, in float64) for each depth in ``layers``, on
    problems drawn from the evaluation key folded with ``stream``, cached: ``(len(layers),)``."""
    layers = [int(L) for L in layers]
    key = {"theory": "gdpp_relative_error", "kappa": float(kappa), "layers": layers, "eval_seed": eval_seed, "stream": stream, "num": num}

    def compute():
        with jax.enable_x64(True):
            k = jax.random.fold_in(jax.random.key(eval_seed), stream)
            return {"error": [theory.gdpp_relative_error(kappa, L, k, num=num) for L in layers]}

    return np.asarray(_theory_cached(data_dir, key, compute)["error"])


def two_layer_ridge_gaps(data_dir, sigmas: Sequence[float], sigma: float, ns: Sequence[int], eval_seed: int, num: int) -> np.ndarray:
    """Theorem 5.2 (:func:`lintx.theory.two_layer_ridge_gap`) at noise ``sigma`` for each context length in
    ``ns`` (sequences drawn from the evaluation key folded with ``n``), cached: ``(len(ns),)``."""
    sigmas, ns = [float(s) for s in sigmas], [int(n) for n in ns]
    key = {"theory": "two_layer_ridge_gap", "sigmas": sigmas, "sigma": float(sigma), "ns": ns, "eval_seed": eval_seed, "num": num}
    compute = lambda: {"gap": [theory.two_layer_ridge_gap(sigmas, sigma, n, jax.random.fold_in(jax.random.key(eval_seed), n), num=num) for n in ns]}  # noqa: E731
    return np.asarray(_theory_cached(data_dir, key, compute)["gap"])


def learned_algorithm(data_dir, ck, sigmas: Sequence[float], eval_seed: int, num: int) -> dict:
    """Sec. 5.2-5.3 (:func:`lintx.theory.learned_algorithm`) of a DIAG or GD++ checkpoint ``ck`` on ``num``
    sequences of each fixed noise level in ``sigmas``, cached: the mean ``step`` and ``shrink`` over the
    sequences, each ``(len(sigmas), L)``."""
    sigmas = [float(s) for s in sigmas]
    key = {"theory": "learned_algorithm", "predictor": ck.meta["npz_sha256"], "sigmas": sigmas, "eval_seed": eval_seed, "num": num}

    def compute():
        outs = [theory.learned_algorithm(ck.cfg, ck.model.params, sample_batch(jax.random.key(eval_seed), Fixed(s), num).tokens) for s in sigmas]
        return {k: np.stack([o[k].mean(axis=1) for o in outs]) for k in ("step", "shrink")}

    return {k: np.asarray(v) for k, v in _theory_cached(data_dir, key, compute).items()}


def tolerance(method: str, layers, column: str, paper: float) -> float:
    """Largest value of ours that counts as reproducing ``paper`` (see module docstring)."""
    if column == "u0" and layers is not None and layers >= 4:
        return 10 * paper
    return 1.10 * paper + 0.001


def table1(data_dir, profile: str, seeds: Sequence[int], eval_seed: int = 2024, num: int = 100_000,
           columns: Sequence[str] = COLUMNS, depths: Sequence[int] = range(1, 8), train_missing: bool = False,
           callback=None, tune_num: int = 100_000, extra_seeds: Sequence[int] = ()) -> list[dict]:
    """One row per (method, layers, column): ours (best seed, mean, std, seeds found), the paper's, ratio,
    and whether it is within tolerance. Missing checkpoints of ``seeds`` are trained if ``train_missing``,
    else reported as missing (``seeds_found = 0``); ``extra_seeds`` count where they exist."""
    paper = paper_table1()
    rows = []
    for column in columns:
        noise = noise_from_label(column)
        for method in METHODS:
            for L in depths:
                cfg = ModelConfig(method.lower(), L)
                values, stderrs, trials = [], [], []
                for s, path in checkpoints(data_dir, profile, cfg, noise, seeds, train_missing, extra_seeds):
                    r = evaluate_checkpoint(data_dir, path, eval_seed, num)
                    values.append(r["adjusted_loss"][-1])
                    stderrs.append(r["adjusted_stderr"][-1])
                    trials.append(_trial(s, path))
                    if callback:
                        callback(method, L, column, s)
                row = _row(method, L, column, values, paper[(method, L)][column], stderrs)
                row["trials"] = trials
                row["diverged_seeds"] = [s for s in dict.fromkeys([*seeds, *extra_seeds])
                                         if recorded_failure(data_dir, profile, cfg, noise, s) is not None]
                row["diverged"] = len(row["diverged_seeds"])
                rows.append(row)
        for name, baseline in tuned_baselines(data_dir, column, num=tune_num).items():
            r = evaluate_baseline(data_dir, name, baseline, column, eval_seed, num)
            rows.append(_row(name, None, column, [r["adjusted_loss"]], paper[(name, None)][column], [r["adjusted_stderr"]]))
    return rows


def _trial(seed: int, path: Path) -> dict:
    """How a checkpoint was trained, from its sidecar: seed, steps, final learning rate, retries, warm start,
    random starts (``lintx.store.best_start``), refinement (``lintx.refine``) and the rival chosen
    (``lintx.store.best_of``: ``own`` or ``rival``, with the rival's parent)."""
    meta = read_sidecar(path)
    refine = meta.get("refine")
    stages = None if refine is None else refine.get("stages", [refine])
    return {"seed": seed, "steps": meta["train"]["steps"], "lr": meta["train"]["lr"], "retries": meta.get("retries", 0),
            "grown_from": meta.get("grown_from"), "starts": len(meta.get("selection_losses", [None])),
            "refine": None if stages is None else tuple((r["steps"], r["num"]) for r in stages),
            "rival": None if "rival" not in meta else (meta["rival"]["chosen"], meta["rival"]["from"])}


def _tried(row: dict) -> str:
    """One line on what was trained for an out-of-tolerance cell (seeds, recipe, retries)."""
    t = row.get("trials", [])
    values = row.get("values", [])
    seeds = ", ".join(str(x["seed"]) for x in t)
    parts = [f"{len(t)} seed{'s' if len(t) != 1 else ''} ({seeds})"]
    if values:
        parts.append(f"best seed {t[int(np.argmin(values))]['seed']}")
    recipes = sorted({(x["steps"], x["lr"]) for x in t if not x["retries"]})
    if recipes:
        parts.append("trained " + ", ".join(f"{steps} steps at lr {lr:.2g}" for steps, lr in recipes))
    retried = [x for x in t if x["retries"]]
    if retried:
        parts.append("diverged first and retrained at a lower lr: " + ", ".join(f"seed {x['seed']} at lr {x['lr']:.2g}" for x in retried))
    if row.get("diverged_seeds"):
        parts.append("diverged after every retry (or the model it starts from did), so not in the table: seed "
                     + ", ".join(str(x) for x in row["diverged_seeds"]))
    counts = sorted({x.get("starts", 1) for x in t} - {1})
    if counts:
        parts.append("each seed the best of " + " or ".join(map(str, counts)) + " random starts on held-out selection sequences")
    parents = sorted({"{} {}".format(*x["grown_from"].split("-")[:2]).upper() for x in t if x["grown_from"]})
    if parents:
        parts.append("warm-started from " + ", ".join(parents))
    rivals = [x for x in t if x.get("rival")]
    if rivals:
        parents = sorted({"{} {}".format(*x["rival"][1].split("-")[:2]).upper() for x in rivals})
        chose = {who: [str(x["seed"]) for x in rivals if x["rival"][0] == who] for who in ("rival", "own")}
        which = [f"seed {', '.join(chose[who])} {what}" for who, what in (("rival", "the fine-tune"), ("own", "its own")) if chose[who]]
        parts.append("each seed the better, on held-out selection sequences, of its own training and a fine-tune of "
                     + ", ".join(parents) + " (" + "; ".join(which) + ")")
    refined = sorted({x["refine"] for x in t if x.get("refine")})
    if refined:
        parts.append("then refined by " + " or ".join(
            ", then ".join(f"{steps} L-BFGS iterations on {num:,} sequences" for steps, num in stages) for stages in refined))
    return "; ".join(parts)


def _diverged_line(found: list[dict]) -> list[str]:
    """A paragraph naming the seeds that diverged after every retry in cells that have other seeds (left out
    of those cells; the grid runner trains spare seeds in their place, ``lintx.profiles.Profile.spare_seeds``)."""
    lost = [f"{r['method']} {r['layers']} `{r['column']}` seed {', '.join(map(str, r['diverged_seeds']))} ({r['seeds_found']} seeds found)"
            for r in found if r.get("diverged_seeds")]
    if not lost:
        return []
    return ["Seeds that diverged after every retry (or whose warm start did), left out of their cell, with the number "
            "of seeds the cell has: " + "; ".join(lost) + ". Run for a profile's seeds, the grid runner trains a spare "
            "seed in place of each (`lintx.profiles.Profile.spare_seeds`; `fast`: seeds 5 and 6).", ""]


def _over(row: dict) -> str:
    """How far the best seed is above its tolerance, in standard errors of its evaluation."""
    tol = tolerance(row["method"], row["layers"], row["column"], row["paper"])
    se = row["best_stderr"]
    return f"tolerance {tol:.3g}, standard error {se:.2g}, {(row['best'] - tol) / se:.1f} of them above it" if se > 0 else f"tolerance {tol:.3g}"


def _row(method, layers, column, values, paper_value, stderrs) -> dict:
    """A cell: ``values`` (one per seed) and the standard error of each on the evaluation set (``stderrs``,
    :func:`lintx.metrics.evaluate`), so a reader sees how far the evaluation's sampling moves the best."""
    row = {"method": method, "layers": layers, "column": column, "paper": paper_value, "seeds_found": len(values),
           "values": [float(v) for v in values]}
    if values:
        best = float(min(values))
        row.update(best=best, best_stderr=float(stderrs[int(np.argmin(values))]), mean=float(np.mean(values)), std=float(np.std(values)),
                   ratio=best / paper_value if paper_value > 0 else math.nan,
                   within=bool(best <= tolerance(method, layers, column, paper_value)))
    return row


def write_table1(rows: list[dict], out_dir, profile: str, num: int) -> tuple[Path, Path]:
    """``table1.csv`` (every row) and ``table1.md`` (ours / paper per cell, out-of-tolerance cells marked)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fields = ["method", "layers", "column", "seeds_found", "diverged", "best", "best_stderr", "mean", "std", "paper", "ratio", "within"]
    with open(out / "table1.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k, "")) for k in fields})
    columns = list(dict.fromkeys(r["column"] for r in rows))
    keys = list(dict.fromkeys((r["method"], r["layers"]) for r in rows))
    cell = {(r["method"], r["layers"], r["column"]): r for r in rows}
    models = [r for r in rows if r["layers"] is not None]
    found = [r for r in models if r["seeds_found"]]
    lines = [f"# Table 1: adjusted evaluation loss, ours / paper (profile `{profile}`, {num:,} evaluation sequences)", "",
             f"Model cells: best of the seeds found; where there are several, their mean ± std and count follow in parentheses. **{sum(r['within'] for r in found)} of {len(found)}** "
             f"trained cells are within tolerance (`1.10 x paper + 0.001`; `u0` at 4+ layers: `10 x paper`); "
             f"{len(models) - len(found)} of {len(models)} cells have no checkpoint: not trained yet (`-`), or diverged after every "
             f"retry ({sum(1 for r in models if not r['seeds_found'] and r.get('diverged'))} cells, `diverged`). Cells marked **!** are outside tolerance.", "",
             *_diverged_line(found),
             "Baseline rows are one evaluation on the same sequences as the models. ADARR's squared errors are heavy-tailed: "
             "one 100,000-sequence set spreads it by about 5%, and its expected value is within 4% of the paper's "
             "(README, 'Measured agreement'), so an ADARR mark here reflects this evaluation set, not the estimator.", "",
             "| method | L | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for m, L in keys:
        vals = []
        for c in columns:
            r = cell.get((m, L, c))
            if r is None or not r["seeds_found"]:
                vals.append(f"{'diverged' if r.get('diverged') else '-'} / {r['paper']:.3g}" if r else "")
            else:
                mark = "" if r["within"] else " **!**"
                spread = f" ({r['mean']:.3g} ± {r['std']:.2g}, {r['seeds_found']} seeds)" if r["seeds_found"] > 1 else ""
                vals.append(f"{r['best']:.3g}{spread} / {r['paper']:.3g}{mark}")
        lines.append(f"| {m} | {L or ''} | " + " | ".join(vals) + " |")
    misses = [r for r in found if not r["within"]]
    lines += ["", f"## Cells outside tolerance ({len(misses)})", "",
              "Each with what was trained for it (from the checkpoints' sidecars). Recipes tried beyond these on the hard "
              "cells are measured in `benchmarks/RESULTS.md`; the README's 'Results' says what is known of the causes. "
              "The standard error is the best seed's, over this evaluation set's sequences (column `best_stderr` of "
              "`table1.csv`): how much another set of the same size could move it. The paper's values carry an error "
              "of their own that it does not report.", ""]
    lines += [f"- {r['method']}, {r['layers']} layer{'s' if r['layers'] != 1 else ''}, `{r['column']}`: {r['best']:.3g} / {r['paper']:.3g} "
              f"({r['ratio']:.3g}x the paper; {_over(r)}); {_tried(r)}" for r in misses]
    lines += _differences(found)
    (out / "table1.md").write_text("\n".join(lines) + "\n")
    return out / "table1.csv", out / "table1.md"


DIFFERENCE = 0.10  # a best seed this far from the paper's value (relative) is listed, in tolerance or not
SEED_SPREAD = 2.0  # a cell whose mean over seeds is this many times its best is listed
ORDER_MARGIN = 0.05  # the paper's FULL counts as below its DIAG when at least this much (relative) lower


def _cell(r: dict) -> str:
    return f"{r['method']} {r['layers']} `{r['column']}`"


def _differences(found: list[dict]) -> list[str]:
    """Where we differ from the paper, in tolerance or not, computed from the rows (nothing typed in): best
    seeds more than ``DIFFERENCE`` above or below the paper's value, cells whose seeds disagree (mean over
    ``SEED_SPREAD`` times the best), cells that seed 0 alone leaves outside tolerance, and depths where the paper's
    FULL is below its DIAG and ours is not."""
    by_ratio = sorted((r for r in found if r["paper"] > 0), key=lambda r: -r["ratio"])
    above = [r for r in by_ratio if r["ratio"] > 1 + DIFFERENCE]
    below = [r for r in reversed(by_ratio) if r["ratio"] < 1 - DIFFERENCE]
    spread = [r for r in found if r["seeds_found"] > 1 and r["mean"] > SEED_SPREAD * r["best"]]
    cell = {(r["method"], r["layers"], r["column"]): r for r in found}
    order = [(f, d) for (m, L, c), f in cell.items() if m == "FULL" and (d := cell.get(("DIAG", L, c)))
             and f["paper"] < (1 - ORDER_MARGIN) * d["paper"] and not f["best"] < (1 - ORDER_MARGIN) * d["best"]]
    first = [(r, r["values"][i]) for r in found for i, t in enumerate(r.get("trials", [])) if t["seed"] == 0]
    first_out = [(r, v) for r, v in first if not v <= tolerance(r["method"], r["layers"], r["column"], r["paper"])]
    ratio = lambda r: f"- {_cell(r)}: {r['best']:.3g} / {r['paper']:.3g} ({r['ratio']:.3g}x{'' if r['within'] else ', outside tolerance'})"  # noqa: E731
    return ["", "## Where we differ from the paper", "",
            "Computed from the rows above, in tolerance or not. The paper rounds its values to 1-2 significant digits, so a small "
            "value's ratio carries that rounding (0.002 stands for 0.0015 to 0.0025).", "",
            f"**Best seed more than {DIFFERENCE:.0%} above the paper** ({len(above)} cells; those within tolerance pass by its "
            "absolute `+0.001` or, without noise, by its `10x`):", "", *(map(ratio, above) if above else ["- none"]), "",
            f"**Best seed more than {DIFFERENCE:.0%} below the paper** ({len(below)} cells):", "", *(map(ratio, below) if below else ["- none"]), "",
            f"**Seeds that disagree** (mean over the seeds more than {SEED_SPREAD:g}x the best; {len(spread)} cells). The best seed is "
            "what the paper reports; a large mean means some seeds ended in a worse minimum, or explode on a few sequences of this "
            "evaluation set:", "",
            *([f"- {_cell(r)}: best {r['best']:.3g}, mean {r['mean']:.3g} over {r['seeds_found']} seeds" for r in spread] or ["- none"]), "",
            f"**Seed 0 alone** (what `make figures` trains where `data/` lacks a model): {len(first) - len(first_out)} of {len(first)} "
            "cells with a seed 0 are within tolerance; the others pass by the best of their seeds, as the paper reports the best of five "
            "(seed 0 / paper):", "",
            *([f"- {_cell(r)}: {v:.3g} / {r['paper']:.3g} ({v / r['paper']:.3g}x)" for r, v in first_out] or ["- none"]), "",
            f"**The paper's FULL below its DIAG, ours not** (the paper's FULL at least {ORDER_MARGIN:.0%} lower than its DIAG, ours not; "
            f"{len(order)} cells; FULL / DIAG):", "",
            *([f"- {f['layers']} layers `{f['column']}`: paper {f['paper']:.3g} / {d['paper']:.3g}, ours {f['best']:.3g} / {d['best']:.3g}"
               for f, d in order] or ["- none"])]
