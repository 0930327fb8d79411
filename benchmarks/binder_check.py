"""Binder's limits, reproduced here: every notebook on one CPU under a 2 GB memory ceiling, with the shipped cache.

    python benchmarks/binder_check.py [--venv build/binder-venv] [--limit-gb 2]   # make binder-check

1. A fresh virtual environment from ``environment.yml``'s dependency list (its ``pip:`` pins), then the
   package itself with ``--no-deps``, as Binder's ``postBuild`` does.
2. Each notebook through papermill, pinned to one CPU (``taskset -c 0``, and one XLA thread), into a
   temporary folder for its figures; ``data/`` is the shipped cache, so nothing is trained.
3. A table of the wall time and the peak resident memory of each notebook (its papermill process and the
   kernel it runs, ``getrusage``). The memory ceiling is checked on that peak: an address-space limit would
   stop JAX, which reserves far more virtual memory than it uses. Exit status 1 if a notebook fails or
   goes over the ceiling.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pins(environment: Path) -> list[str]:
    """The ``pip:`` pins of ``environment.yml``, read without a YAML parser (its form is fixed and tested)."""
    lines = environment.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    return [m.group(1) for line in lines[start + 1:] if (m := re.match(r"^\s+-\s+(\S+==\S+)\s*$", line))]


def make_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # a conda environment comes with current setuptools and wheel, which postBuild's editable install needs
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "setuptools>=64", "wheel"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins(ROOT / "environment.yml")], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--no-build-isolation", "-e", str(ROOT)], check=True)
    return python


def run_notebook(python: Path, notebook: Path, out: Path) -> tuple[int, float, float]:
    """Exit status, seconds and peak resident memory (GB) of one notebook run on one CPU."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.time()\n"
        "rc = subprocess.call(sys.argv[1:])\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20\n"
        "print(f'BINDER {rc} {time.time() - t:.1f} {peak:.3f}')\n"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
    cmd = ["taskset", "-c", "0", str(python), "-c", code, str(python), "-m", "papermill", "--cwd", str(ROOT),
           "-p", "fig_dir", str(out), str(notebook), str(out / notebook.name)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [x for x in result.stdout.splitlines() if x.startswith("BINDER ")]
    if not line:
        sys.stderr.write(result.stdout + result.stderr)
        return 1, float("nan"), float("nan")
    rc, seconds, peak = line[-1].split()[1:]
    if int(rc):
        sys.stderr.write(result.stderr[-3000:])
    return int(rc), float(seconds), float(peak)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--venv", type=Path, default=ROOT / "build" / "binder-venv")
    ap.add_argument("--limit-gb", type=float, default=2.0)
    args = ap.parse_args()
    python = make_venv(args.venv)
    failed = []
    print(f"{'notebook':32s} {'status':>6s} {'seconds':>8s} {'peak GB':>8s}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
            rc, seconds, peak = run_notebook(python, nb, Path(tmp))
            ok = rc == 0 and peak <= args.limit_gb
            failed += [] if ok else [nb.name]
            print(f"{nb.name:32s} {'ok' if ok else 'FAIL':>6s} {seconds:8.1f} {peak:8.2f}", flush=True)
    print(f"{len(failed)} notebook(s) failed or went over {args.limit_gb} GB: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
