"""One plotting style for every figure, and a reproducible save.

:func:`save` writes PDF and PNG without creation dates or software stamps, so rebuilding a figure from
the same numbers gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

VARIANT_COLORS = {"gdpp": "#1b9e77", "diag": "#d95f02", "full": "#7570b3"}
VARIANT_NAMES = {"gdpp": "GD++", "diag": "DIAG", "full": "FULL"}
BASELINE_STYLES = {"CONSTRR": ":", "ADARR": "--", "TUNEDRR": "-."}
LEGEND_COLUMNS = 8  # entries per row of a figure legend


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


def figure_legend(fig, axes, **kw) -> None:
    """One legend for the whole figure, below the panels: every labelled line of ``axes`` once (the panels
    share colours and styles, so a legend in each would repeat them)."""
    seen = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=min(len(seen), LEGEND_COLUMNS), frameon=False,
               bbox_to_anchor=(0.5, 0.0), **{"fontsize": 7, **kw})


def finish(fig, title: str) -> None:
    """Title and layout: room at the top for the title (0.45 inch) and at the bottom for a figure legend
    (0.25 inch a row), whatever the figure's height."""
    fig.suptitle(title)
    height = fig.get_figheight()
    rows = -(-len(fig.legends[0].get_texts()) // LEGEND_COLUMNS) if fig.legends else 0
    fig.tight_layout(rect=(0, min(0.3, (0.25 * rows + 0.05 * bool(rows)) / height), 1, 1 - 0.45 / height))


def log_curve(ax, x, y, floor: float = 1e-4, **kw) -> None:
    """A curve on a log axis that does not break where a finite-sample adjusted loss is <= 0 (a model
    better than the oracle on those sequences, by chance): such points are drawn at ``floor`` with open
    markers, so the curve stays whole and the reader sees where it happened. NaN (no value) is a gap."""
    y = np.asarray(y, np.float64)
    low = np.isfinite(y) & (y <= floor)  # NaN (no value) stays a gap
    ax.plot(x, np.where(low, floor, y), **kw)
    if low.any():
        ax.plot(np.asarray(x)[low], np.full(low.sum(), floor), "o", mfc="none", ms=3, color=kw.get("color"), ls="none")


def profile_panel(ax, sigmas, models: dict, baselines: dict, noise, title: str) -> None:
    """A per-variance profile (Fig. 2, 3, 6): adjusted loss against a fixed evaluation sigma for each model
    (``{variant: values}``, coloured by variant) and each baseline (``{name: values}``, black, by style), on a
    log axis capped at 10, the in-distribution noise shaded (an interval) or marked (a set)."""
    mark_in_distribution(ax, noise)
    for v, values in models.items():
        log_curve(ax, sigmas, values, color=VARIANT_COLORS[v], label=VARIANT_NAMES[v])
    for name, values in baselines.items():
        log_curve(ax, sigmas, values, color="k", ls=BASELINE_STYLES[name], lw=0.8, label=name)
    ax.set_yscale("log")
    cap(ax)
    ax.set(xlabel="evaluation $\\sigma$", title=title)


def median_line(ax, x, r: dict, **kw) -> None:
    """A curve of medians (``r["median"]``) with the min-max over the evaluation sets (or seeds) as error
    bars: how far another set could move each point."""
    m, lo, hi = (np.asarray(r[k], np.float64) for k in ("median", "min", "max"))
    ax.errorbar(x, m, yerr=[np.clip(m - lo, 0, None), np.clip(hi - m, 0, None)], fmt="o-", ms=3, capsize=2, lw=1, **kw)


def table1_heatmap(fig, rows: list[dict]) -> None:
    """Table 1 at a glance: ours / paper (the median over the evaluation sets) for every model cell, on a
    log2 colour scale centred on 1; cells outside tolerance are marked with a dot, missing ones left blank."""
    models = [r for r in rows if r["layers"] is not None]
    columns = list(dict.fromkeys(r["column"] for r in models))
    keys = list(dict.fromkeys((r["method"], r["layers"]) for r in models))
    ratio = np.full((len(keys), len(columns)), np.nan)
    out = []
    for r in models:
        i, j = keys.index((r["method"], r["layers"])), columns.index(r["column"])
        if r.get("seeds_found") and r["paper"] > 0:
            ratio[i, j] = r["median"] / r["paper"]
            if not r["within"]:
                out.append((i, j))
    ax = fig.add_subplot()
    im = ax.imshow(np.log2(ratio), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    for i, j in out:
        ax.plot(j, i, "k.", ms=4)
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(keys)), [f"{m} {L}" for m, L in keys], fontsize=6)
    for k in range(1, len(keys)):
        if keys[k][0] != keys[k - 1][0]:
            ax.axhline(k - 0.5, color="k", lw=0.8)
    ax.grid(False)
    bar = fig.colorbar(im, ax=ax, ticks=[-2, -1, 0, 1, 2])
    bar.ax.set_yticklabels(["1/4", "1/2", "1", "2", "4"])
    bar.set_label("ours / paper (median over evaluation sets)")
    ax.set_title(f"Table 1: ours / paper; dots: the {len(out)} of {int(np.isfinite(ratio).sum())} cells outside tolerance\n(1.10 x paper + 0.001; without noise at 4+ layers 10 x paper)", fontsize=9)
