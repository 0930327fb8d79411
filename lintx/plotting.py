"""One plotting style for every figure, and a reproducible save.

:func:`save` writes PDF and PNG without creation dates or software stamps, so rebuilding a figure from
the same numbers gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

VARIANT_COLORS = {"gdpp": "#1b9e77", "diag": "#d95f02", "full": "#7570b3"}
VARIANT_NAMES = {"gdpp": "GD++", "diag": "DIAG", "full": "FULL"}
BASELINE_STYLES = {"CONSTRR": ":", "ADARR": "--", "TUNEDRR": "-."}


def style() -> None:
    """Apply the package's figure style (seaborn ticks, small fonts, fixed DPI)."""
    sns.set_theme(context="paper", style="ticks", font_scale=0.9)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.grid": True, "grid.alpha": 0.3,
                         "svg.hashsalt": "lintx", "pdf.fonttype": 42})


def save(fig, fig_dir, name: str) -> list[Path]:
    """Save ``fig`` as ``fig_dir/name.pdf`` and ``.png`` with no dates or version stamps."""
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = [fig_dir / f"{name}.pdf", fig_dir / f"{name}.png"]
    fig.savefig(paths[0], bbox_inches="tight", metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Software": None})
    return paths


def noise_title(noise) -> str:
    """Short panel title of a noise setting: ``sigma_max = 5``, ``sigma in {1, 3}``, ``sigma = 2``."""
    kind = type(noise).__name__
    if kind == "Uniform":
        return f"$\\sigma_{{max}}$ = {noise.sigma_max:g}"
    if kind == "Categorical":
        return "$\\sigma \\in$ {" + ", ".join(f"{v:g}" for v in noise.values) + "}"
    return f"$\\sigma$ = {noise.sigma:g}"


def mark_in_distribution(ax, noise) -> None:
    """Shade the training noise range in gray (uniform), or mark each training sigma (categorical, fixed)."""
    if type(noise).__name__ == "Uniform":
        ax.axvspan(0.0, noise.sigma_max, color="0.88", zorder=0, lw=0)
    else:
        for s in getattr(noise, "values", None) or (noise.sigma,):
            ax.axvline(s, color="0.6", ls=":", lw=1, zorder=0)


def cap(ax, top: float = 10.0) -> None:
    """Cap a log y-axis at ``top``: deep models trained on a narrow noise range can blow up far out of
    it (1e24 and more), which would flatten every other curve. Such curves leave the panel at the top."""
    lo, hi = ax.get_ylim()
    if hi > top:
        ax.set_ylim(lo, top)


def seeds_text(seeds, extra_seeds=()) -> str:
    """``seed 0``, ``best of 5 seeds`` or ``best of seeds 0 (+1, 2 where shipped)`` for a figure title."""
    text = f"seed {seeds[0]}" if len(seeds) == 1 else f"best of {len(seeds)} seeds"
    extra = [s for s in extra_seeds if s not in seeds]
    return text if not extra else f"best of seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} (+{', '.join(map(str, extra))} where shipped)"
