"""Command line: ``python -m lintx train ...`` trains every missing model of a profile's grid (by default the
shipped one, :data:`lintx.method.DEFAULT`);
``python -m lintx check ...`` runs the held-out check of :mod:`lintx.fit` on the checkpoints saved;
``python -m lintx prune ...`` lists (and with ``--delete`` removes) files nothing reads any more.

    python -m lintx train                                     # the shipped profile's whole study, 5 seeds
    python -m lintx train --columns u5 --depths 1-8 --seeds 0 --workers 2
    python -m lintx train --profile quick --columns u5 c13 --variants diag full --heads 2 --seeds 0 --no-deep-u5
    python -m lintx check                                     # exit status 1 if a checkpoint fails
    python -m lintx prune [--profile quick] [--delete]        # stale checkpoints and evaluations

Resumable: finished checkpoints are found by content (see :mod:`lintx.store`), verified and skipped, so a
stop loses at most the models in progress. A checkpoint whose files exist but do not verify (damaged arrays,
a sidecar that does not match) stops the run before it trains anything, with a message naming the file:
it is never passed over, nor silently trained over.
``--shard K/N`` trains the K-th (from 0) of N disjoint parts of the grid (:mod:`lintx.grid`), each model's
warm-start lineage within one part, so a Slurm job array (``--array=0-(N-1)``) or a Kubernetes indexed job spreads a study
over machines with no code of ours in between; ``--shard N`` reads K from ``SLURM_ARRAY_TASK_ID`` or
``JOB_COMPLETION_INDEX`` (``docs/cluster.md``).
``--workers N`` runs N processes, each restricted to one XLA thread, taking a part of the grid as ``--shard`` deals it
(measured fastest on a 2-core CPU); within it, depth by depth, and the seeds of a model one after another.
Within a process, models are spread over every local JAX device (several GPUs; on CPU, test it with
``JAX_NUM_CPU_DEVICES=2``): one thread per device, each taking a part of what is left (dealt alike), with
that device as JAX's default. Each trained model appends a line (name, seconds, final loss, held-out
loss, retries, device) to ``DATA/PROFILE/train_log.jsonl``.
Each progress line ends with the part's ETA (:func:`lintx.grid.eta`): a model takes the seconds that log
measured for it at the profile's other seeds (a study's later seeds go by its first), else its cost in
sequence-layer steps at this run's rate.

A seed's candidates train together, vmapped (:mod:`lintx.fit`); seeds train one after another, so a
checkpoint does not depend on which other seeds happened to be trained beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _depths(text: str) -> list[int]:
    """``1-7`` or ``2,4,6``: depths >= 1, at least one."""
    try:
        if "-" in text:
            lo, hi = text.split("-")
            depths = list(range(int(lo), int(hi) + 1))
        else:
            depths = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"depths must look like 1-7 or 2,4,6, got {text!r}") from None
    if not depths or min(depths) < 1:
        raise argparse.ArgumentTypeError(f"depths must name at least one depth, each >= 1, got {text!r}")
    return depths


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"seeds must be non-negative integers, got {text!r}")
    return seed


def _noise_label(text: str) -> str:
    """A noise setting (``u5``, ``uniform:4.5``, ``categorical:2,4``, ``fixed:1``), as its label."""
    from lintx.tasks import noise_from_label

    try:
        return noise_from_label(text).label
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


SHARD_INDEX_VARIABLES = ("SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX")


def _shard_arg(text: str, environ=os.environ) -> tuple[int, int]:
    """``K/N`` (K from 0), or ``N`` with K from the scheduler's index variable (:data:`SHARD_INDEX_VARIABLES`)."""
    try:
        if "/" in text:
            i, k = (int(x) for x in text.split("/"))
        else:
            k = int(text)
            found = [(v, environ[v]) for v in SHARD_INDEX_VARIABLES if environ.get(v, "") != ""]
            if not found:
                raise argparse.ArgumentTypeError(f"--shard {text}: no index K given and none of {', '.join(SHARD_INDEX_VARIABLES)} "
                                                 f"is set; write --shard K/{text}")
            name, value = found[0]
            try:
                i = int(value)
            except ValueError:
                raise argparse.ArgumentTypeError(f"--shard {text}: {name}={value!r} is not an integer index") from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must look like K/N or N (K counts from 0), got {text!r}") from None
    if k < 1 or not 0 <= i < k:
        raise argparse.ArgumentTypeError(f"--shard {text}: needs N >= 1 and 0 <= K < N, got K={i}, N={k}")
    return i, k


def _jobs(args):
    from lintx import grid
    from lintx.method import get_profile

    prof = get_profile(args.profile)
    return prof, grid.jobs(prof, args.seeds, depths=args.depths, columns=args.columns, variants=args.variants,
                           deep_u5=args.deep_u5, d=args.d, n=args.n, heads=args.heads)


def _train_jobs(args, prof, todo, tag, log) -> list[str]:
    """Train ``todo`` in order; progress lines prefixed with ``tag``; returns the models that diverged."""
    from lintx.checkpoint import DivergedError
    from lintx.fit import get_or_train
    from lintx.grid import cost, eta, measured_seconds
    from lintx.store import logged_seconds

    costs = [cost(prof, c, n) for c, n, _ in todo]
    measured, seconds, failed = measured_seconds(prof, todo, logged_seconds(args.data, prof)), [], []
    for n_done, (cfg, noise, seed) in enumerate(todo, 1):
        t = time.perf_counter()
        try:
            ckpt = get_or_train(args.data, prof.name, cfg, noise, seed, log=log)
        except DivergedError as e:  # reported and logged, never saved; the grid goes on
            failed.append(f"{cfg.variant} L{cfg.layers} {noise.label} seed {seed}")
            log({"failed": failed[-1], "profile": prof.name, "seconds": round(time.perf_counter() - t, 2), "error": str(e)})
            print(f"[{tag}] {n_done}/{len(todo)} FAILED {failed[-1]}: {e}", flush=True)
            seconds.append(time.perf_counter() - t)
            continue
        seconds.append(time.perf_counter() - t)
        print(f"[{tag}] {n_done}/{len(todo)} {cfg.variant} L{cfg.layers} {noise.label} seed {seed}: {seconds[-1]:.1f}s, "
              f"final train loss {ckpt.meta['final_loss']:.4g}; ETA {eta(costs, measured, seconds) / 60:.1f} min", flush=True)
    return failed


def train_command(args) -> int:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import jax

    from lintx.checkpoint import CheckpointError
    from lintx.fit import recorded_failure
    from lintx.grid import shard
    from lintx.store import checkpoint_path, is_trained, load_as

    if args.devices > len(jax.local_devices()):
        raise ValueError(f"--devices {args.devices}: only {len(jax.local_devices())} local JAX device(s) here")
    prof, jobs = _jobs(args)
    i, k = args.shard
    mine = shard(shard(jobs, i, k), *args.worker)  # this shard's part, and of it this worker's
    paths = [checkpoint_path(args.data, prof, cfg, noise, seed) for cfg, noise, seed in mine]
    failures = [recorded_failure(args.data, prof, cfg, noise, seed) for cfg, noise, seed in mine]
    recorded = [(p, f) for p, f in zip(paths, failures) if f is not None]
    todo = [j for j, p, f in zip(mine, paths, failures) if not is_trained(p) and f is None]
    bad = []
    for (cfg, noise, seed), p in zip(mine, paths):  # verified before it is skipped
        if is_trained(p):
            try:
                load_as(p, cfg, noise, seed)
            except CheckpointError as e:
                bad.append(str(e))
    if bad:
        for line in bad:
            print(f"[shard {i}/{k}] BAD {line}", flush=True)
        raise CheckpointError(f"{len(bad)} checkpoint(s) in {os.path.join(args.data, prof.name)} exist but do not verify "
                              f"(listed above; the first: {bad[0]}); nothing was trained. Move or delete them to train them anew")
    log_path = os.path.join(args.data, prof.name, "train_log.jsonl")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    print(f"[shard {i}/{k}] {len(mine)} models in this shard, {len(mine) - len(todo) - len(recorded)} already trained, "
          f"{len(todo)} to train", flush=True)
    for p, f in recorded:  # a failure of an earlier run (its own, or its warm start's): reported, not retried
        print(f"[shard {i}/{k}] {p.name} not trained: {f.name} diverged after every retry in an earlier run (delete that record to retry)", flush=True)
    lock = threading.Lock()

    def log(record):
        record = {**record, "device": str(jax.config.jax_default_device or jax.devices()[0])}
        with lock, open(log_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    # several local devices (GPUs, or CPU devices from JAX_NUM_CPU_DEVICES): one thread per device, each
    # training its own noise settings with that device as JAX's default. A model's computation is
    # the same on any device, so its checkpoint does not depend on how many devices there were.
    devices = jax.local_devices()[: args.devices] if args.devices else jax.local_devices()

    def on_device(m):
        with jax.default_device(devices[m]):
            return _train_jobs(args, prof, shard(todo, m, len(devices)), f"shard {i}/{k} {devices[m]}", log)

    if len(devices) == 1:
        failed = _train_jobs(args, prof, todo, f"shard {i}/{k}", log)
    else:
        with ThreadPoolExecutor(len(devices)) as pool:
            failed = [f for fs in pool.map(on_device, range(len(devices))) for f in fs]
    if failed:
        print(f"[shard {i}/{k}] {len(failed)} model(s) diverged after every retry and were not saved: {', '.join(failed)}", flush=True)
    return 1 if failed and not args.diverged_ok else 0


def check_command(args) -> int:
    """Held-out check of every checkpoint of a profile (those saved before the check existed have no
    ``validation_loss`` in their sidecar): one line per failure, a summary, exit status 1 if any fails."""
    from pathlib import Path

    from lintx.checkpoint import CheckpointError, load
    from lintx.selection import held_out_loss, held_out_problem
    from lintx.method import get_profile

    prof = get_profile(args.profile)
    paths = sorted(Path(args.data, prof.name).glob("*.npz"))
    failed, checked = [], 0
    for path in paths:
        try:
            ckpt = load(path)
        except CheckpointError as e:  # listed, and the others still checked
            failed.append(path.name)
            print(f"BAD {path.name}: {e}", flush=True)
            continue
        if "validation_loss" in ckpt.meta and not args.all:
            continue
        checked += 1
        problem = held_out_problem(ckpt, held_out_loss(ckpt, prof.validation_num))
        if problem is not None:
            failed.append(path.name)
            print(f"FAILED {path.name}: {problem}", flush=True)
    print(f"{checked} of {len(paths)} checkpoints in {Path(args.data, prof.name)} checked on {prof.validation_num} "
          f"held-out sequences each; {len(failed)} failed", flush=True)
    return 1 if failed else 0


def prune_command(args) -> int:
    """List the files of a profile that a changed recipe or code left behind (:func:`lintx.store.stale_files`)
    and the evaluation-cache entries of checkpoints no longer in ``DATA`` (:func:`lintx.evaluation.stale_evaluations`);
    delete them with ``--delete``. They stay in git history where they were committed."""
    from lintx.evaluation import stale_evaluations
    from lintx.store import stale_files

    bad = []
    files = stale_files(args.data, args.profile, bad=bad)
    for path, error in bad:  # never deleted: a corrupt checkpoint is for a person to look at
        print(f"BAD {path}: {error}", flush=True)
    evals = stale_evaluations(args.data, ignore=[p for p in files if p.suffix == ".npz"] + [p for p, _ in bad])
    for path in files + evals:
        print(("deleting " if args.delete else "stale ") + str(path), flush=True)
        if args.delete:
            path.unlink()
    checkpoints = sum(p.suffix == ".npz" for p in files)
    print(f"{checkpoints} stale checkpoints, {len(files) - 2 * checkpoints} other stale files in {os.path.join(args.data, args.profile)}, "
          f"{len(evals)} stale evaluations in {os.path.join(args.data, 'evals')}: "
          + ("deleted" if args.delete else "run with --delete to remove them")
          + (f"; {len(bad)} corrupt checkpoint(s) listed above, left in place" if bad else ""), flush=True)
    return 1 if bad else 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, naming the parameter and the value; no usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv=None) -> int:
    from lintx.method import DEFAULT, PROFILES
    from lintx.reference import COLUMNS

    profile = dict(default=DEFAULT, help=f"one of {', '.join(PROFILES)} (lintx.method.PROFILES; default {DEFAULT})")
    ap = _Parser(prog="python -m lintx", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    t = sub.add_parser("train", help="train every missing model of a profile's grid")
    t.add_argument("--profile", **profile)
    t.add_argument("--data", default="data")
    t.add_argument("--seeds", type=_seed, nargs="+", default=None, help="default: the profile's seed count")
    t.add_argument("--columns", type=_noise_label, nargs="+", default=list(COLUMNS),
                   help="noise settings: Table 1's columns (default) or any, e.g. u4.5, uniform:4.5, categorical:2,4, fixed:1")
    t.add_argument("--depths", type=_depths, default=list(range(1, 8)))
    t.add_argument("--variants", nargs="+", default=["gdpp", "diag", "full"], choices=["gdpp", "diag", "full"])
    t.add_argument("--d", type=int, default=10, help="input dimension (the paper: 10)")
    t.add_argument("--n", type=int, default=20, help="context length (the paper: 20)")
    t.add_argument("--heads", type=int, default=1, help="attention heads per layer (the paper: 1)")
    t.add_argument("--no-deep-u5", dest="deep_u5", action="store_false", help="skip the 8-layer sigma_max=5 models")
    t.add_argument("--workers", type=int, default=1, help="processes, each on one XLA thread (CPU)")
    t.add_argument("--devices", type=int, default=0, help="local JAX devices to spread models over (default: all)")
    t.add_argument("--diverged-ok", action="store_true",
                   help="exit status 0 even if models diverged after every retry (they are recorded, and reported "
                        "as 'diverged' in Table 1); make figures uses it")
    t.add_argument("--shard", type=_shard_arg, default=(0, 1), metavar="K/N",
                   help="train only the K-th (from 0) of N disjoint parts of the grid (a model's lineage stays in one part); "
                        "N alone takes K from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX")
    t.add_argument("--worker", type=_shard_arg, default=(0, 1), help=argparse.SUPPRESS)  # set by --workers for its processes
    c = sub.add_parser("check", help="held-out check of the checkpoints saved under a profile")
    c.add_argument("--profile", **profile)
    c.add_argument("--data", default="data")
    c.add_argument("--all", action="store_true", help="also those whose check was recorded when they were trained")
    p = sub.add_parser("prune", help="list (--delete: remove) checkpoints and evaluations nothing reads any more")
    p.add_argument("--profile", **profile)
    p.add_argument("--data", default="data")
    p.add_argument("--delete", action="store_true", help="delete them (default: only list them)")
    args = ap.parse_args(argv)
    if args.command == "train" and (args.workers < 1 or args.devices < 0):
        ap.error(f"--workers must be >= 1 and --devices >= 0 (0: all local devices), got {args.workers} and {args.devices}")
    try:
        return _run(args, argv)
    except (ValueError, TypeError, OSError) as e:  # bad input or a bad file: one line naming it, no traceback
        print(f"python -m lintx {args.command}: error: {e}", file=sys.stderr, flush=True)
        return 2


def _run(args, argv) -> int:
    from lintx.method import get_profile

    get_profile(args.profile)  # an unknown profile is refused before anything runs
    if args.command in ("check", "prune") and not os.path.isdir(os.path.join(args.data, args.profile)):
        raise ValueError(f"--data {args.data!r}: no folder {os.path.join(args.data, args.profile)!r} of checkpoints")
    if args.command == "check":
        return check_command(args)
    if args.command == "prune":
        return prune_command(args)
    if args.workers > 1:
        env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + SINGLE_THREAD).strip()}
        base = list(argv if argv is not None else sys.argv[1:])
        if "--workers" in base:  # "--workers N"
            j = base.index("--workers")
            del base[j : j + 2]
        base = [a for a in base if not a.startswith("--workers=")]
        return _workers([[sys.executable, "-m", "lintx", *base, "--worker", f"{w}/{args.workers}"] for w in range(args.workers)], env)
    return train_command(args)


def _workers(commands: list[list[str]], env: dict) -> int:
    """Run the worker processes and wait for them. SIGINT or SIGTERM stops every one of them (SIGTERM, then
    SIGKILL after 10 s) before this process exits: a checkpoint is written atomically, so a rerun resumes
    and loses at most the models in progress."""
    procs = [subprocess.Popen(c, env=env) for c in commands]

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return max(p.wait() for p in procs)
    except KeyboardInterrupt:
        print("python -m lintx: interrupted; stopping the workers", file=sys.stderr, flush=True)
        return 130
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
