"""The evaluation protocol and its cache: losses that do not hang on one evaluation set.

Deep linear transformers have heavy-tailed losses: a handful of sequences with an ill-conditioned
``Sigma`` can carry most of a 100,000-sequence set's loss, so one set's value is one draw of a noisy
statistic (``benchmarks/RESULTS.md``, "Heavy tails"). A reported loss is therefore

- the **median over K evaluation sets** of ``num`` sequences each (:attr:`Protocol.eval_seeds`, K = 5 of
  100,000 by default, each drawn as the paper draws its one set), with the min and max over the sets beside
  it; the single set of key 2024 (:attr:`Protocol.single_seed`) is kept as one more column, so the paper's
  one-draw protocol stays visible;
- of the seed chosen on **selection sets** (:attr:`Protocol.selection_seeds`, median over 3 sets of
  20,000): disjoint from every evaluation set, so an evaluation set judges a model and never chooses it.

Keys: the set of seed ``e`` draws chunk ``i`` with ``fold_in(key(e), i)`` (:mod:`lintx.metrics`). Training
seed ``s`` draws from ``fold_in(key(s), 0 | 1)`` and :mod:`lintx.fit`'s streams from ``fold_in(key(s), stream)``,
for the study's seeds and their random starts (``s + 1,000,000 k``); evaluation and selection seeds are
at least :data:`FIRST_PROTOCOL_SEED`, above every seed of the study, and :meth:`Protocol.check` refuses
evaluation, selection and single-set seeds that coincide (``tests/test_evaluation.py`` checks the keys).

Every value is cached as a small JSON file in ``DATA/evals/`` (:func:`cached`), keyed by what determines
it: the predictor (a checkpoint's SHA-256, or a baseline's tuned parameters), the noise, the set's seed and
size, and the evaluation's numerics version :data:`lintx.versions.EVAL_NUMERICS` (as checkpoints are keyed
on :data:`lintx.versions.NUMERICS`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Sequence

import jax
import numpy as np

from lintx import metrics
from lintx.checkpoint import atomic_write, load, read_sidecar
from lintx.metrics import EVAL_CHUNK
from lintx.model import check_int
from lintx.ridge import AdaRR, ConstRR, TunedRR, adarr_defined, tune_baselines
from lintx.store import locked
from lintx.tasks import D, N, noise_from_label
from lintx.versions import EVAL_NUMERICS, code_version

THEORY_MODULES = ("theory.py", "implicit.py")  # their code keys the theory notebook's cached numbers
FIRST_PROTOCOL_SEED = 10_000  # every evaluation and selection seed is at least this: above every training seed


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Which sequences judge a model (``eval_seeds``, ``num`` each) and which choose it (``selection_seeds``,
    ``selection_num`` each); ``single_seed`` is the one-set value reported beside the median."""

    eval_seeds: tuple[int, ...] = (10_001, 10_002, 10_003, 10_004, 10_005)
    num: int = 100_000
    selection_seeds: tuple[int, ...] = (20_001, 20_002, 20_003)
    selection_num: int = 20_000
    single_seed: int = 2024

    def __post_init__(self):
        for name in ("eval_seeds", "selection_seeds"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
                raise TypeError(f"{name} must be a non-empty list of integers, got {value!r}")
            object.__setattr__(self, name, tuple(check_int(name, v, FIRST_PROTOCOL_SEED) for v in value))
        object.__setattr__(self, "num", check_int("num", self.num, 1))
        object.__setattr__(self, "selection_num", check_int("selection_num", self.selection_num, 1))
        object.__setattr__(self, "single_seed", check_int("single_seed", self.single_seed, 0))
        self.check()

    def check(self) -> None:
        """Refuse a protocol whose sets share a seed: an evaluation set must never choose."""
        seeds = [*self.eval_seeds, *self.selection_seeds, self.single_seed]
        shared = sorted({s for s in seeds if seeds.count(s) > 1})
        if shared:
            raise ValueError(f"evaluation, selection and single-set seeds must all differ; {shared} repeat in "
                             f"eval_seeds={list(self.eval_seeds)}, selection_seeds={list(self.selection_seeds)}, "
                             f"single_seed={self.single_seed}")


def _entry(cache_dir, key: dict) -> tuple[Path, dict]:
    """Where :func:`cached` keeps the value of ``key``, and the full key stored with it."""
    key = {**key, "eval_numerics": EVAL_NUMERICS}
    return Path(cache_dir) / f"{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]}.json", key


def _store(path: Path, key: dict, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"key": key, "value": value}, sort_keys=True).encode())


def cached(cache_dir, key: dict, compute):
    """``compute()`` (a JSON-able dict), cached under a hash of ``key`` plus :data:`EVAL_NUMERICS`; computed
    under a lock on that name, so concurrent processes compute each value once.

    ``compute()`` runs with 64-bit JAX off, whatever the process's setting: the noise samplers draw other
    values with it on (``jax.random.uniform`` and ``randint`` follow the default dtype), so the same key
    would give another set. Every evaluation is float32, as the models are evaluated."""
    path, key = _entry(cache_dir, key)
    value = _stored(path, key)
    if value is not None:
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):  # two notebooks (make -j2) asking for the same evaluation: one computes, one waits
        value = _stored(path, key)
        if value is None:
            with jax.enable_x64(False):
                value = compute()
            _store(path, key, value)
    return value


def _stored(path: Path, key: dict):
    """The cached value at ``path`` if it was stored under exactly ``key``, else None. An unreadable entry
    (truncated, not JSON) is an error naming the file: entries are written atomically, so it was damaged."""
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"evaluation cache entry {path} is unreadable ({e}); delete it to recompute") from e
    if isinstance(stored, dict) and stored.get("key") == key:
        return stored["value"]
    return None


def stale_evaluations(data_dir, ignore: Sequence[Path] = ()) -> list[Path]:
    """Entries of ``DATA/evals`` that nothing will read again: computed under another evaluation numerics
    version or by other theory code, unreadable, or of a checkpoint in no ``DATA/PROFILE/`` folder (checkpoints in ``ignore``, about
    to be deleted, do not count). Baselines' entries are kept while the evaluation code is current."""
    ignore = {Path(p) for p in ignore}
    shas = {read_sidecar(p)["npz_sha256"] for p in Path(data_dir).glob("*/*.npz") if p not in ignore}
    theory_code, stale = code_version(THEORY_MODULES), []
    for path in sorted(Path(data_dir, "evals").glob("*.json")):
        try:
            key = json.loads(path.read_text()).get("key", {})
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):  # unreadable: never a cache hit
            key = {}
        predictor = key.get("predictor", "")
        checkpoint = isinstance(predictor, str) and len(predictor) == 64 and all(c in "0123456789abcdef" for c in predictor)
        theory_stale = "theory_code" in key and key["theory_code"] != theory_code
        if key.get("eval_numerics") != EVAL_NUMERICS or theory_stale or (checkpoint and predictor not in shas):
            stale.append(path)
    return stale


def _tolist(r: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in r.items()}


def theory_cached(data_dir, key: dict, compute) -> dict:
    """The theory notebook's numbers (:mod:`lintx.theory`), cached like the evaluations and keyed also on the
    theory code. float32 results differ in their last bits between CPUs, so computed afresh on another
    machine the theory figures would get other bytes; cached and shipped, every machine draws them from the
    same numbers."""
    return cached(Path(data_dir) / "evals", {**key, "theory_code": code_version(THEORY_MODULES)}, lambda: _tolist(compute()))


def _checkpoint_key(ck, eval_seed: int, num: int) -> dict:
    return {"predictor": ck.meta["npz_sha256"], "noise": ck.noise.to_json(), "eval_seed": eval_seed, "num": num, "chunk": EVAL_CHUNK}


def evaluate_checkpoint(data_dir, path, eval_seed: int, num: int, noise=None) -> dict:
    """Loss statistics per layer of a checkpoint on one set (its own noise unless ``noise`` is given), cached."""
    ck = load(path)
    noise = noise or ck.noise
    key = {**_checkpoint_key(ck, eval_seed, num), "noise": noise.to_json()}
    return cached(Path(data_dir) / "evals", key, lambda: _tolist(metrics.evaluate(ck.model, noise, jax.random.key(eval_seed), num, ck.cfg.d, ck.cfg.n)))


def fill(data_dir, paths: Sequence, sets: Sequence[tuple[int, int]]) -> int:
    """Cache :func:`evaluate_checkpoint` of every checkpoint of ``paths`` on every set ``(eval_seed, num)``
    of ``sets``, with the same numbers, each set drawn once for all the checkpoints of one noise setting
    and size (:func:`lintx.metrics.evaluate_many`); returns how many values were computed. Entries are
    written atomically and not locked: a process computing the same entry meanwhile writes the same bytes."""
    groups: dict = {}
    for path in paths:
        ck = load(path)
        groups.setdefault((json.dumps(ck.noise.to_json(), sort_keys=True), ck.cfg.d, ck.cfg.n), []).append(ck)
    computed = 0
    for cks in groups.values():
        ck0 = cks[0]
        for eval_seed, num in sets:
            todo = [(ck, *_entry(Path(data_dir) / "evals", _checkpoint_key(ck, eval_seed, num))) for ck in cks]
            todo = [t for t in todo if _stored(t[1], t[2]) is None]
            if not todo:
                continue
            with jax.enable_x64(False):
                values = metrics.evaluate_many([ck.model for ck, _, _ in todo], ck0.noise, jax.random.key(eval_seed), num, ck0.cfg.d, ck0.cfg.n)
            for (_, path, key), value in zip(todo, values):
                _store(path, key, _tolist(value))
            computed += len(todo)
    return computed


def protocol_sets(protocol: Protocol) -> list[tuple[int, int]]:
    """Every set ``(eval_seed, num)`` of ``protocol``: evaluation, single and selection sets."""
    return [*((s, protocol.num) for s in (*protocol.eval_seeds, protocol.single_seed)),
            *((s, protocol.selection_num) for s in protocol.selection_seeds)]


def checkpoint_sets(data_dir, path, seeds: Sequence[int], num: int) -> dict:
    """:func:`evaluate_checkpoint` on each set of ``seeds``: each statistic ``(len(seeds), L)``."""
    rows = [evaluate_checkpoint(data_dir, path, s, num) for s in seeds]
    return {k: np.array([r[k] for r in rows], np.float64) for k in rows[0]}


def spread(values) -> dict:
    """Median, min and max over the sets (axis 0) of ``values``: the reported number and its spread."""
    v = np.asarray(values, np.float64)
    return {"median": np.median(v, axis=0), "min": v.min(axis=0), "max": v.max(axis=0)}


def selection_loss(data_dir, path, protocol: Protocol) -> float:
    """Median over the selection sets of a checkpoint's adjusted loss (last layer): what chooses a seed."""
    return float(np.median(checkpoint_sets(data_dir, path, protocol.selection_seeds, protocol.selection_num)["adjusted_loss"][:, -1]))


def choose(data_dir, found: Sequence[tuple[int, Path]], protocol: Protocol):
    """The ``(seed, path)`` of ``found`` with the lowest :func:`selection_loss` (None if ``found`` is empty).
    No evaluation set takes part."""
    if not found:
        return None
    return min(found, key=lambda sp: (selection_loss(data_dir, sp[1], protocol), sp[0]))


def _sizes(d: int, n: int) -> dict:
    """What of ``d`` and ``n`` goes into a baseline's cache key: nothing at the paper's sizes (the keys of
    the shipped evaluations), both otherwise."""
    d, n = check_int("d", d, 1), check_int("n", n, 1)
    return {} if (d, n) == (D, N) else {"d": d, "n": n}


def tuned_baselines(data_dir, label: str, tune_seed: int = 1, num: int = 100_000, d: int = D, n: int = N) -> dict:
    """CONSTRR, ADARR, TUNEDRR for a noise setting (and ``d``, ``n``), tuned on sequences of ``tune_seed`` (cached);
    CONSTRR alone where ADARR is not defined (``n <= d``, :func:`lintx.ridge.adarr_defined`)."""
    noise = noise_from_label(label)

    def tune():
        b = tune_baselines(noise, jax.random.key(tune_seed), num, d, n)
        tuned = {"CONSTRR": {"s2": b["CONSTRR"].s2}}
        if "TUNEDRR" in b:
            tuned["TUNEDRR"] = {"multiplier": b["TUNEDRR"].multiplier, "threshold": b["TUNEDRR"].threshold}
        return tuned

    p = cached(Path(data_dir) / "evals", {"tune": noise.to_json(), "tune_seed": tune_seed, "num": num, **_sizes(d, n)}, tune)
    out = {"CONSTRR": ConstRR(p["CONSTRR"]["s2"])}
    if adarr_defined(d, n):
        out.update(ADARR=AdaRR(), TUNEDRR=TunedRR(p["TUNEDRR"]["multiplier"], p["TUNEDRR"]["threshold"]))
    return out


def evaluate_baseline(data_dir, name: str, baseline, label: str, eval_seed: int, num: int, d: int = D, n: int = N) -> dict:
    """Loss statistics of a baseline on one set of ``label``'s noise, cached."""
    noise = noise_from_label(label)
    key = {"predictor": repr(baseline), "name": name, "noise": noise.to_json(), "eval_seed": eval_seed, "num": num, "chunk": EVAL_CHUNK,
           **_sizes(d, n)}
    return cached(Path(data_dir) / "evals", key, lambda: _tolist(metrics.evaluate(baseline, noise, jax.random.key(eval_seed), num, d, n)))


def baseline_sets(data_dir, label: str, protocol: Protocol, tune_num: int = 100_000, d: int = D, n: int = N) -> dict:
    """For each of CONSTRR, ADARR, TUNEDRR tuned for ``label``: its statistics on each evaluation set
    (``(K,)`` each), plus ``single``, its adjusted loss on the single set."""
    out = {}
    for name, b in tuned_baselines(data_dir, label, num=tune_num, d=d, n=n).items():
        rows = [evaluate_baseline(data_dir, name, b, label, s, protocol.num, d, n) for s in protocol.eval_seeds]
        out[name] = {k: np.array([r[k] for r in rows], np.float64) for k in rows[0]}
        out[name]["single"] = float(evaluate_baseline(data_dir, name, b, label, protocol.single_seed, protocol.num, d, n)["adjusted_loss"])
    return out


def profile_checkpoint(data_dir, path, sigmas: Sequence[float], eval_seed: int, num: int) -> dict:
    """Per-variance profile of a checkpoint, cached: ``loss``, ``adjusted_loss``... each ``(len(sigmas), L)``."""
    ck = load(path)
    key = {"predictor": ck.meta["npz_sha256"], "profile_sigmas": [float(x) for x in sigmas], "eval_seed": eval_seed, "num": num, "chunk": EVAL_CHUNK}
    return cached(Path(data_dir) / "evals", key, lambda: _tolist(metrics.profile(ck.model, sigmas, jax.random.key(eval_seed), num, ck.cfg.d, ck.cfg.n)))


def baseline_profile(data_dir, name: str, baseline, sigmas: Sequence[float], eval_seed: int, num: int, d: int = D, n: int = N) -> dict:
    """Per-variance profile of a baseline, cached: each value ``(len(sigmas),)``."""
    key = {"predictor": repr(baseline), "name": name, "profile_sigmas": [float(x) for x in sigmas], "eval_seed": eval_seed, "num": num,
           "chunk": EVAL_CHUNK, **_sizes(d, n)}
    compute = lambda: _tolist(metrics.profile(baseline, sigmas, jax.random.key(eval_seed), num, d, n))
    return {k: np.asarray(v) for k, v in cached(Path(data_dir) / "evals", key, compute).items()}


def tail_profile(data_dir, path, eval_seed: int, num: int, edges: Sequence[float]) -> dict:
    """Where a checkpoint's loss explodes (:func:`lintx.metrics.sequence_errors`), binned by the largest
    eigenvalue of the context's ``Sigma``, cached: per bin of ``edges`` the count of sequences, the median,
    99th percentile and maximum per-sequence adjusted loss, and the bin's share of the set's adjusted loss."""
    ck = load(path)
    edges = [float(e) for e in edges]
    key = {"predictor": ck.meta["npz_sha256"], "tail_edges": edges, "eval_seed": eval_seed, "num": num, "chunk": EVAL_CHUNK}

    def compute():
        adjusted, lam = metrics.sequence_errors(ck.model, ck.noise, jax.random.key(eval_seed), num, ck.cfg.d, ck.cfg.n)
        which = np.digitize(lam, edges) - 1
        total = adjusted.sum()
        rows = {"count": [], "median": [], "p99": [], "max": [], "share": []}
        for b in range(len(edges) - 1):
            a = adjusted[which == b]
            rows["count"].append(int(a.size))
            for name, f in (("median", np.median), ("p99", lambda x: np.quantile(x, 0.99)), ("max", np.max)):
                rows[name].append(float(f(a)) if a.size else None)
            rows["share"].append(float(a.sum() / total))
        return rows

    return cached(Path(data_dir) / "evals", key, compute)
