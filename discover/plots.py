"""The figures of ``discover report``, drawn with matplotlib's Agg backend (no display needed).

Each function takes plain data (lists and arrays, no run-directory knowledge) and returns the
PNG as bytes; :mod:`discover.reporting.report` decides what to draw and writes the files.  Scores are
on the search's scale: 0 is tuned adam, lower is better; the fitness figure draws only the
trained evaluations (a failed or rejected child is counted in its legend).
"""

from __future__ import annotations

import io
import warnings

import numpy as np

BASELINE_STYLES = {"adam": ("black", "--"), "sgd": ("tab:gray", ":"),
                   "lion": ("tab:brown", "-.")}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def _legend_below(ax) -> None:
    # Below the axes: points and curves can fill the whole panel; a legend inside hides some.
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)


def _evaluation_axis(ax, n: int) -> None:
    """x from 0 to past the last evaluation, integer ticks (no 0.98, 1.00, 1.02 for one)."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(0, n + max(1, n // 50))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _evaluation_panel(ax, n: int, xlabel: str, ylabel: str) -> None:
    """Axes of a panel against evaluations: ticks, labels, grid, legend below."""
    _evaluation_axis(ax, n)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    _legend_below(ax)


def running_best(values: np.ndarray) -> np.ndarray:
    return np.minimum.accumulate(values)


def rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """Median of the last ``window`` values at each position (fewer at the start)."""
    return np.array([np.median(values[max(0, i + 1 - window):i + 1])
                     for i in range(len(values))])


def median_window(n: int) -> int:
    return max(1, min(50, n // 5))


def fitness_figure(search: list[float | None], held_out: list[tuple[int, float]],
                   population_median: list[tuple[int, float]],
                   rejected: list[bool] | None = None) -> bytes:
    """Search score of every evaluation in log order (None: failed), held-out scores as
    (evaluation number, score), the population median at checkpoints as (evaluations,
    median); ``rejected`` marks children stopped at the hurdle.  Only trained evaluations are
    drawn (a failed or rejected child has no score of its own: drawn at its stand-in value it
    would flatten the median and hide the search); the legend counts those left out, and the
    y-range follows the trained scores, so that the best so far is read at the scale of its
    changes."""
    plt = _pyplot()
    n = len(search)
    x, scores, stopped, failed = fitness_series(search, rejected)
    panels = 2 if held_out else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.0), squeeze=False)
    ax = axes[0, 0]
    left_out = ", ".join(part for part in (
        f"{stopped} stopped at the hurdle" if stopped else "",
        f"{failed} failed" if failed else "") if part)
    ax.plot(x, scores, ".", color="tab:blue", alpha=0.3, markersize=4,
            label="each trained evaluation" + (f" (not drawn: {left_out})" if left_out else ""))
    if scores.size:
        window = median_window(len(scores))
        ax.step(x, running_best(scores), where="post", color="tab:blue", lw=2,
                label="best so far")
        ax.plot(x, rolling_median(scores, window), color="tab:orange",
                label=f"median of the last {window} trained")
        _score_range(ax, scores)
    if population_median:
        px, py = zip(*population_median)
        ax.plot(px, py, "s", color="tab:green", markersize=6, markerfacecolor="none",
                label="population median (checkpoints)")
    ax.set_title("Search score")
    if held_out:
        hx, hy = (np.array(v, float) for v in zip(*held_out))
        right = axes[0, 1]
        right.plot(hx, hy, "o", color="tab:purple", alpha=0.4, markersize=4,
                   label="each held-out evaluation")
        right.step(hx, running_best(hy), where="post", color="tab:purple", lw=2,
                   label="best so far")
        held_window = median_window(len(hy))
        right.plot(hx, rolling_median(hy, held_window), color="tab:orange",
                   label=f"median of last {held_window} held-out score{'s' * (held_window > 1)}")
        right.set_title("Held-out score (candidates that passed the funnel)")
    for a in axes[0]:
        a.axhline(0.0, color="black", lw=0.8, ls="--")
        _evaluation_panel(a, n, "evaluations (in the order results arrived)",
                          "score (0 = tuned adam, lower is better)")
    fig.tight_layout()
    return _png(fig)


def fitness_series(search: list[float | None], rejected: list[bool] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(x, scores, stopped, failed)``: the evaluation numbers (from 1) and search scores of
    the trained evaluations, and how many were stopped at the hurdle or failed."""
    rejected = list(rejected) if rejected is not None else [False] * len(search)
    trained = np.array([s is not None and not r for s, r in zip(search, rejected)], bool)
    x = np.arange(1, len(search) + 1)[trained]
    scores = np.array([s for s, t in zip(search, trained) if t], float)
    stopped = sum(1 for s, r in zip(search, rejected) if r and s is not None)
    return x, scores, stopped, sum(s is None for s in search)


def score_range(scores: np.ndarray) -> tuple[float, float] | None:
    """y-limits from a little below the best score to a little above the 90th percentile
    (and 0, tuned adam): the worst tail would stretch the scale past the changes that
    matter.  None without a finite score."""
    finite = scores[np.isfinite(scores)]
    if not finite.size:
        return None
    low, high = float(finite.min()), float(max(np.percentile(finite, 90), 0.0))
    span = max(high - low, 1e-3)
    return low - 0.08 * span, high + 0.08 * span


def _score_range(ax, scores: np.ndarray) -> None:
    limits = score_range(scores)
    if limits is not None:
        ax.set_ylim(*limits)


def rates_figure(failed: list[bool], checkpoints: list[dict]) -> bytes:
    """Cumulative failure rate over the log (``failed`` per evaluation in log order), and the
    cache-hit and invalid-child rates from the checkpoint counters (``evaluations``,
    ``cache_hits``, ``invalid`` per row)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    if failed:
        x = np.arange(1, len(failed) + 1)
        ax.plot(x, 100 * np.cumsum(failed) / x, color="tab:red",
                label="failed evaluations (% of evaluations)")
    if checkpoints:
        evals = np.array([c["evaluations"] for c in checkpoints], float)
        hits = np.array([c["cache_hits"] for c in checkpoints], float)
        invalid = np.array([c["invalid"] for c in checkpoints], float)
        needing = np.maximum(evals + hits, 1)
        ax.plot(evals, 100 * hits / needing, "o-", color="tab:blue",
                label="cache hits (% of scored children)")
        ax.plot(evals, 100 * invalid / np.maximum(evals + hits + invalid, 1), "^-",
                color="tab:olive", label="invalid children rejected (% of bred)")
    _evaluation_axis(ax, max([len(failed)] + [c["evaluations"] for c in checkpoints]))
    ax.set_ylim(-2, 102)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("cumulative rate (%)")
    ax.set_title("Cache hits and failures (cumulative)")
    ax.grid(alpha=0.3)
    _legend_below(ax)
    fig.tight_layout()
    return _png(fig)


def smooth(losses: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (NaN/Inf stay NaN: a diverged run leaves a gap)."""
    losses = np.where(np.isfinite(losses), losses, np.nan)
    if window <= 1:
        return losses
    kernel = np.ones(window) / window
    return np.convolve(losses, kernel, mode="valid")


def smoothing_window(steps: int) -> int:
    return max(1, steps // 40)


def curves_figure(curves: dict[str, list[dict]]) -> bytes:
    """One panel per task; each curve is a dict with ``label``, ``name`` (a baseline's name or
    "#rank"), ``lr`` and ``losses`` (training loss per step, mean over seeds)."""
    plt = _pyplot()
    names = list(curves)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False)
    for ax, task in zip(axes.flat, names):
        for i, curve in enumerate(c for c in curves[task] if c["name"] not in BASELINE_STYLES):
            _draw(ax, curve, f"C{i}", "-", 1.8)
        for curve in curves[task]:
            if curve["name"] in BASELINE_STYLES:
                _draw(ax, curve, *BASELINE_STYLES[curve["name"]], 1.3)
        steps = max((len(c["losses"]) for c in curves[task]), default=0)
        ax.set_title(task)
        ax.set_xlabel("step")
        ax.set_ylabel(f"training loss (mean of {smoothing_window(steps)} steps)")
        finite = [c["losses"][np.isfinite(c["losses"])] for c in curves[task]]
        if all(f.size and f.min() > 0 for f in finite):
            ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        _legend_below(ax)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    return _png(fig)


def _draw(ax, curve: dict, color: str, style: str, width: float) -> None:
    losses = np.asarray(curve["losses"], float)
    window = smoothing_window(len(losses))
    y = smooth(losses, window)
    x = np.arange(window, window + len(y))
    ax.plot(x, y, color=color, ls=style, lw=width, label=curve["label"])


def _contender_style(i: int, name: str, user: bool) -> dict:
    """Users' programs thick, in the first colours; baselines thin, each its own colour of
    ``tab20`` (fifteen baselines) unless it has a fixed style."""
    import matplotlib

    if user:
        return {"color": f"C{i % 10}", "linestyle": "-", "linewidth": 2.4, "zorder": 3}
    default = matplotlib.colormaps["tab20"]((i * 7) % 20)
    color, style = BASELINE_STYLES.get(name, (default, "-"))
    return {"color": color, "linestyle": style, "linewidth": 1.0, "alpha": 0.8}


def profile_figure(taus: np.ndarray, profiles: dict[str, np.ndarray],
                   user: list[str]) -> bytes:
    """Performance profile (AlgoPerf's style): for each optimizer the share of tasks on which
    its loss is within a factor tau of the best optimizer's, against tau."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (name, share) in enumerate(profiles.items()):
        ax.step(taus, share, where="post", label=name + (" (yours)" if name in user else ""),
                **_contender_style(i, name, name in user))
    ax.set_xlim(taus[0], taus[-1])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("tau: validation loss within this factor of the best optimizer's")
    ax.set_ylabel("share of tasks")
    ax.set_title("Performance profile (higher and further left is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _png(fig)


def lr_curves_figure(curves: dict[str, list[tuple]]) -> bytes:
    """Per task a panel: each optimizer's mean validation loss against the learning rate
    (log-log; gaps where a seed diverged), its tuned rate marked with a dot.  ``curves[task]``
    is a list of ``(name, lrs, losses, chosen_lr, user)``."""
    plt = _pyplot()
    n = len(curves)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, (task, items) in zip(axes.flat, curves.items()):
        # Up to 3x the loss at each curve's smallest rate (about the untrained loss): a run
        # blowing up at a large rate would otherwise squash every curve into the bottom.
        starts = [losses[np.isfinite(losses)][0] for _, _, losses, _, _ in items
                  if np.isfinite(losses).any()]
        for i, (name, lrs, losses, chosen, user) in enumerate(items):
            style = _contender_style(i, name, user)
            ax.plot(lrs, losses, label=name, **style)
            if np.isfinite(chosen):
                j = int(np.argmin(abs(np.log(lrs) - np.log(chosen))))
                ax.plot([lrs[j]], [losses[j]], "o", color=style["color"], markersize=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        if starts:
            ax.set_ylim(top=3 * max(starts))
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("validation loss")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=min(len(labels), 8),
               bbox_to_anchor=(0.5, -0.02 - 0.03 * ((len(labels) - 1) // 8)))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _png(fig)


def variant_style(i: int) -> tuple[str, str]:
    """The colour and line style of the ``i``-th variant of a figure: matplotlib's ten colours,
    then the same ten dashed, then dash-dotted (distinct for the first 30)."""
    return f"C{i % 10}", ("-", "--", "-.")[i // 10 % 3]


def search_power_figure(curves: dict[str, dict[str, np.ndarray]],
                        references: dict[str, dict[str, float]] | None = None) -> bytes:
    """Best search score so far against evaluations, one panel per target: for each variant
    the median over seeds (line) and the quartiles (band).  ``curves[target][variant]`` is
    [seeds, evaluations] (NaN where a run has no score yet); ``references[target]`` are
    horizontal lines (a tuned baseline's search score, scored as the searches score)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(6.0 * len(curves), 4.0), squeeze=False)
    for ax, (target, variants) in zip(axes[0], curves.items()):
        n = 1
        for i, (variant, runs) in enumerate(variants.items()):
            runs = np.asarray(runs, float)
            n = max(n, runs.shape[1])
            x = np.arange(1, runs.shape[1] + 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
                low, mid, high = np.nanpercentile(runs, [25, 50, 75], axis=0)
            color, dashes = variant_style(i)
            ax.plot(x, mid, color=color, ls=dashes, lw=2,
                    label=f"{variant} (median of {len(runs)})")
            ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)
        for j, (name, value) in enumerate((references or {}).get(target, {}).items()):
            color, style = BASELINE_STYLES.get(name, (("tab:red", "tab:olive", "tab:cyan")[j % 3],
                                                      ":"))
            ax.axhline(value, color=color, ls=style, lw=1, label=f"{name} (its search score)")
        ax.set_title(f"target: {target}")
        _evaluation_panel(ax, n, "evaluations", "best search score so far (0 = tuned adam)")
    fig.tight_layout()
    return _png(fig)


def islands_figure(islands: dict[int, tuple[list[int], list[float]]]) -> bytes:
    """Best search score so far of each island against evaluations (log order)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    n = 1
    for island, (xs, ys) in islands.items():
        ax.step(xs, ys, where="post", lw=1.5, label=f"island {island}")
        n = max(n, xs[-1] if xs else 1)
    ax.axhline(0.0, color="black", lw=0.8, ls="--")
    ax.set_title("Best search score so far, per island")
    _evaluation_panel(ax, n, "evaluations (in the order results arrived)",
                      "score (0 = tuned adam, lower is better)")
    fig.tight_layout()
    return _png(fig)


def factor_figure(rows: list[dict]) -> bytes:
    """Score against tuned adam per factor level (``scripts/transfer_diagnosis.py``): one
    panel per factor (``horizon``, ``width``, ``batch``: x the factor, the unchanged search
    set at 1; ``schedule``: x the horizon factor, every contender scheduled), one line per
    program with its 95% interval as error bars; crowned programs thick."""
    plt = _pyplot()
    panels = [f for f in ("horizon", "width", "batch", "schedule")
              if any(r["factor"] == f for r in rows)]
    if not panels:
        panels = ["base"]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.8), squeeze=False)
    names = list(dict.fromkeys(r["program"] for r in rows))
    for ax, factor in zip(axes[0], panels):
        for i, name in enumerate(names):
            mine = [r for r in rows if r["program"] == name
                    and (r["factor"] == factor or (r["factor"] == "base" and factor != "schedule"))]
            mine.sort(key=lambda r: r["level"])
            if not mine:
                continue
            x = np.array([r["level"] for r in mine], float)
            y = np.array([r["difference"] for r in mine], float)
            low = np.array([r["low"] if r["low"] is not None else r["difference"] for r in mine])
            high = np.array([r["high"] if r["high"] is not None else r["difference"]
                             for r in mine])
            style = _contender_style(i, name, mine[0]["crowned"])
            style.pop("zorder", None)
            ax.errorbar(x * (1 + 0.02 * (i - len(names) / 2)), y, yerr=[y - low, high - y],
                        marker="o", ms=3, capsize=2, label=name, **style)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel({"schedule": "horizon factor, warmup + cosine"}.get(factor,
                                                                          f"{factor} factor"))
        ax.set_title(factor)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("score - tuned adam's (lower is better)")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _png(fig)
