"""Report figures (matplotlib, Agg backend, imported lazily): DET curves, score histograms, layer analysis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spkpeft.eval.metrics import DetCurve

_DET_TICKS = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8]
_MAX_DET_POINTS = 4000


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _probit(p: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(np.clip(p, 1e-5, 1 - 1e-5))


def _thin(det: DetCurve) -> tuple[np.ndarray, np.ndarray]:
    """At most ~_MAX_DET_POINTS points, always keeping the ends; enough for a smooth line."""
    n = det.p_miss.size
    idx = np.unique(np.linspace(0, n - 1, min(n, _MAX_DET_POINTS)).astype(int))
    return det.p_fa[idx], det.p_miss[idx]


def plot_det(
    curves: Mapping[str, DetCurve],
    path: str | Path,
    title: str = "DET curve",
    eers: Mapping[str, float] | None = None,
    points: Mapping[str, Sequence[tuple[str, float, float]]] | None = None,
) -> Path:
    """DET curves on normal-deviate axes, one line per system; EER points marked when given.

    ``points``: per system, extra operating points ``(label, P_fa, P_miss)`` (e.g. the minDCF
    thresholds), drawn as open markers in the system's colour (one legend entry per label); points
    outside the axes (minDCF at low priors often has P_fa near 0) sit on the nearest edge."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    worst = max(eers.values()) if eers else 0.1
    best = min(eers.values()) if eers else 0.1
    lo_p, hi_p = (0.001 if best > 0.005 else 0.0001), (0.4 if worst < 0.15 else 0.8)
    shown = [t for t in _DET_TICKS if lo_p <= t <= hi_p]
    ticks = _probit(np.array(shown))
    lo, hi = ticks[0], ticks[-1]
    markers: dict[str, str] = {}
    for name, det in curves.items():
        p_fa, p_miss = _thin(det)
        label = name if not eers or name not in eers else f"{name} (EER {100 * eers[name]:.2f}%)"
        (line,) = ax.plot(_probit(p_fa), _probit(p_miss), label=label, lw=1.5)
        if eers and name in eers:
            e = _probit(np.array([eers[name]]))
            ax.plot(e, e, "o", color=line.get_color(), ms=5)
        for label_pt, p_fa_pt, p_miss_pt in (points or {}).get(name, ()):
            marker = markers.setdefault(label_pt, "sD^v<>"[len(markers) % 6])
            xy = np.clip(_probit(np.array([p_fa_pt, p_miss_pt])), lo, hi)
            ax.plot(xy[:1], xy[1:], marker, mfc="none", color=line.get_color(), ms=7, clip_on=False)
    for label_pt, marker in markers.items():
        ax.plot([], [], marker, mfc="none", color="0.3", ms=7, label=label_pt)
    ax.plot([lo, hi], [lo, hi], color="0.7", lw=0.8, ls="--")
    ax.set(xticks=ticks, yticks=ticks, xlim=(lo, hi), ylim=(lo, hi), title=title)
    ax.set_xticklabels([f"{100 * t:g}" for t in shown])
    ax.set_yticklabels([f"{100 * t:g}" for t in shown])
    ax.set_xlabel("False alarm rate (%)")
    ax.set_ylabel("Miss rate (%)")
    ax.grid(True, color="0.9")
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def plot_score_histograms(
    scores: Mapping[str, np.ndarray],
    labels: np.ndarray,
    path: str | Path,
    title: str = "Scores",
    thresholds: Mapping[str, float] | None = None,
) -> Path:
    """Target / non-target score histograms (density), one panel per system; a dashed line marks the
    threshold given for the system (e.g. the EER threshold)."""
    plt = _pyplot()
    labels = np.asarray(labels).astype(bool)
    n = len(scores)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, (name, s) in zip(axes[0], scores.items()):
        s = np.asarray(s)
        bins = np.linspace(s.min(), s.max(), 60)
        ax.hist(s[~labels], bins=bins, density=True, alpha=0.55, label="non-target", color="tab:blue")
        ax.hist(s[labels], bins=bins, density=True, alpha=0.55, label="target", color="tab:orange")
        if thresholds and name in thresholds:
            ax.axvline(thresholds[name], color="k", ls="--", lw=1, label="EER threshold")
        ax.set_title(name)
        ax.set_xlabel("score")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("density")
    fig.suptitle(title)
    return _save(fig, path)


def layer_series(values: Mapping[str, float | Sequence[float]]) -> dict[str, np.ndarray]:
    """Normalise layer values to ``{series: (n,) array}``.

    Sequences pass through; scalars keyed ``<series>/<layer index>`` (as ``UniPET.stats()`` gives:
    ``gate/adapter/3``) are grouped into one series per prefix, ordered by the numeric index.
    """
    series: dict[str, np.ndarray] = {}
    grouped: dict[str, dict[int, float]] = {}
    for key, v in values.items():
        prefix, _, idx = key.rpartition("/")
        if np.ndim(v) == 0 and prefix and idx.isdigit():
            grouped.setdefault(prefix, {})[int(idx)] = float(v)
        elif np.ndim(v) == 0:
            raise ValueError(f"layer value {key!r} is a scalar but its key does not end in /<layer index>")
        else:
            series[key] = np.asarray(v, dtype=np.float64).ravel()
    for prefix, by_layer in grouped.items():
        full = np.full(max(by_layer) + 1, np.nan)
        full[list(by_layer)] = list(by_layer.values())
        series[prefix] = full
    return series


def plot_layer_analysis(
    values: Mapping[str, float | Sequence[float]], path: str | Path, title: str = ""
) -> Path:
    """Paper-style layer-wise bar chart: one group of bars per layer, one bar per series.

    ``values``: e.g. ``{"layer_weights": [w_0 .. w_L]}``, ``{"gate/adapter": [...], "gate/prompt": [...]}``
    or per-layer scalars ``{"gate/adapter/0": 0.6, ...}`` (see :func:`layer_series`); series may differ
    in length (layer weights include the CNN output, index 0).
    """
    if not values:
        raise ValueError("no layer values to plot")
    series = layer_series(values)
    for k, v in series.items():
        if v.size == 0 or not np.isfinite(v).all():
            raise ValueError(f"layer values {k!r} must be a non-empty finite sequence, got {v}")
    plt = _pyplot()
    n_layers = max(v.size for v in series.values())
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * n_layers + 2), 3.6))
    for j, (name, v) in enumerate(series.items()):
        ax.bar(np.arange(v.size) + (j - (len(series) - 1) / 2) * width, v, width, label=name)
    ax.set_xticks(np.arange(n_layers))
    ax.set_xlabel("layer")
    ax.set_ylabel("value")
    ax.set_title(title or "Layer-wise analysis")
    ax.grid(True, axis="y", color="0.9")
    ax.set_axisbelow(True)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
