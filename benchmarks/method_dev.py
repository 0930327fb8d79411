"""Develop the method (:mod:`lintx.method`) on settings Table 1 does not have, judged on sets it never uses.

    python benchmarks/method_dev.py --columns uniform:4.5 categorical:2,4 [--steps 1000 --batch 512 --lr 2e-2 \\
        --random-starts 0 --no-scale-batch] [--d 10 --n 20] [--depths 1-7] [--seed 0] [--workers 2] [--data build/dev]

Trains every variant and depth of each setting with one budget of the method (by default
``lintx.method.Budget()``; a profile named after the budget, in ``--data``; resumable), then prints per
depth the adjusted loss of GD++, DIAG and FULL on 50,000 sequences of development key 31001 (no
evaluation, selection or training key of Table 1's protocol), the candidate each model kept, the training
seconds from the log, and the ridge baselines tuned on key 31002. The candidate kept is the index of the
start it trained from (grown, embedded, then random; ``*`` where that start, untrained, beat every trained
candidate). It also says where the nesting breaks: a deeper model worse than a shallower one, FULL worse
than DIAG, or DIAG worse than GD++ (beyond 2% on this set).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

DEV_EVAL_KEY, DEV_TUNE_KEY, DEV_NUM = 31001, 31002, 50_000


def _profile(args):
    from lintx import method

    wsd = dict(schedule="wsd", phase=args.phase, cooldown=args.cooldown, plateau=args.plateau) if args.phase else {}
    budget = method.Budget(steps=args.steps, batch=args.batch, lr=args.lr, random_starts=args.random_starts, warm_lr=args.warm_lr,
                           scale_batch=args.scale_batch, chunk=args.chunk, **wsd)
    name = (f"dev-s{args.steps}-b{args.batch}{'' if args.scale_batch else 'f'}-lr{args.lr:g}-r{args.random_starts}" + (f"-w{args.warm_lr:g}" if args.warm_lr else "")
            + (f"-W{args.phase}-{args.cooldown}-{args.plateau:g}" if args.phase else "") + (f"-c{args.chunk}" if args.chunk != method.Budget.chunk else ""))
    method.PROFILES[name] = method.Profile(name, budget, 1, "development budget")
    return name


def _train_column(args, label):
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    from lintx import fit
    from lintx.model import ModelConfig
    from lintx.tasks import noise_from_label

    name = _profile(args)
    noise = noise_from_label(label)
    log_path = Path(args.data, name, "train_log.jsonl")
    log_path.parent.mkdir(parents=True, exist_ok=True)

    def log(rec):
        with open(log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    for L in args.depths:
        for v in args.variants:
            fit.get_or_train(args.data, name, ModelConfig(v, L, d=args.d, n=args.n), noise, args.seed, log=log)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--columns", nargs="+", default=["uniform:4.5", "categorical:2,4"])
    from lintx.method import Budget

    p.add_argument("--steps", type=int, default=Budget.steps)
    p.add_argument("--batch", type=int, default=Budget.batch)
    p.add_argument("--lr", type=float, default=Budget.lr)
    p.add_argument("--random-starts", type=int, default=Budget.random_starts)
    p.add_argument("--warm-lr", type=float, default=Budget.warm_lr, help="learning rate of models with a warm start")
    p.add_argument("--phase", type=int, default=Budget.phase, help="wsd: held steps between looks (0: the budget's cosine; --steps: the most)")
    p.add_argument("--cooldown", type=int, default=200, help="wsd: a copy's cool-down steps before a look")
    p.add_argument("--chunk", type=int, default=Budget.chunk, help="steps per compiled loop (wsd: the cool-down a multiple of it)")
    p.add_argument("--plateau", type=float, default=Budget.plateau, help="wsd: the least relative fall of a look that goes on")
    p.add_argument("--no-scale-batch", dest="scale_batch", action="store_false", help="every architecture at --batch (lintx.method.batch)")
    p.add_argument("--variants", nargs="+", default=["gdpp", "diag", "full"])
    p.add_argument("--d", type=int, default=10)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--depths", default="1-7")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data", default="build/dev")
    args = p.parse_args()
    lo, hi = args.depths.split("-")
    args.depths = list(range(int(lo), int(hi) + 1))
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(args.workers) as pool:
        pool.starmap(_train_column, [(args, c) for c in args.columns])
    wall = time.perf_counter() - t0
    _report(args, wall)


def _report(args, wall):
    import jax
    import numpy as np

    from lintx import store
    from lintx.metrics import evaluate
    from lintx.model import ModelConfig
    from lintx.ridge import tune_baselines
    from lintx.tasks import noise_from_label

    name = _profile(args)
    logs = [json.loads(x) for x in Path(args.data, name, "train_log.jsonl").read_text().splitlines()]
    secs = {r["checkpoint"]: r["seconds"] for r in logs if "checkpoint" in r}
    print(f"\nbudget {name}: d={args.d} n={args.n} seed {args.seed}; {wall:.0f} s wall; training seconds summed from the log: "
          f"{sum(secs.values()):.0f}\n")
    for label in args.columns:
        noise = noise_from_label(label)
        key = jax.random.key(DEV_EVAL_KEY)
        base = {k: float(np.asarray(evaluate(b, noise, key, DEV_NUM, args.d, args.n)["adjusted_loss"]))
                for k, b in tune_baselines(noise, jax.random.key(DEV_TUNE_KEY), DEV_NUM, args.d, args.n).items()}
        print(f"### {label}: " + ", ".join(f"{k} {v:.4g}" for k, v in base.items()) + "\n")
        print("| L | GD++ | DIAG | FULL | candidate kept: steps (GD++/DIAG/FULL) | train s |")
        print("|---|---|---|---|---|---|")
        prev, breaks = {}, []
        for L in args.depths:
            row, kept, t = {}, [], 0.0
            for v in args.variants:
                cfg = ModelConfig(v, L, d=args.d, n=args.n)
                path = store.checkpoint_path(args.data, name, cfg, noise, args.seed)
                ck = store.load_as(path, cfg, noise, args.seed)
                row[v] = float(np.asarray(evaluate(ck.model, noise, key, DEV_NUM, args.d, args.n)["adjusted_loss"])[-1])
                kept.append(f"{ck.meta.get('start', 0)}{'' if ck.meta.get('kept_start') is None else '*'}:{ck.meta['steps']}")
                t += secs.get(path.name, 0.0)
                if v in prev and row[v] > 1.02 * prev[v]:
                    breaks.append(f"{v} L{L} {row[v]:.4g} > L{L - 1} {prev[v]:.4g}")
            for hi, lo in (("full", "diag"), ("diag", "gdpp")):
                if hi in row and lo in row and row[hi] > 1.02 * row[lo]:
                    breaks.append(f"{hi} L{L} {row[hi]:.4g} > {lo} {row[lo]:.4g}")
            prev = row
            print(f"| {L} | " + " | ".join(f"{row[v]:.4g}" if v in row else "-" for v in ("gdpp", "diag", "full"))
                  + f" | {'/'.join(kept)} | {t:.0f} |")
        print("\nnesting breaks beyond 2%: " + ("; ".join(breaks) or "none") + "\n")


if __name__ == "__main__":
    main()
