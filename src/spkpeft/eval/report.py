"""Evaluation report of a run: ``report.md`` + ``report.json``, score files and PNG plots.

Layout written under ``run_dir``::

    report.md, report.json        metrics per trial list and system (EER with its 95 % interval, minDCF
                                  0.01/0.05, thresholds) and what produced them; lists evaluated by an
                                  earlier call and not re-evaluated now are kept (never overwritten)
    scores/<list>.tsv             enroll, test, label and one column per system
    plots/det_<list>.png          DET curves of all systems (normal-deviate axes)
    plots/scores_<list>.png       target / non-target histograms per system
    plots/layers.png              layer weights / gate values, when given
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spkpeft.eval.metrics import bayes_threshold, det_curve, operating_point
from spkpeft.eval.plots import layer_series

log = logging.getLogger(__name__)

SYSTEM_TITLES = {
    "cosine": "cosine",
    "asnorm": "AS-norm",
    "calibrated": "calibrated (LLR)",
}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "trials"


def write_report(
    run_dir: str | Path,
    results: Mapping,
    layer_values: Mapping[str, float | Sequence[float]] | None = None,
    plots: bool = True,
    title: str = "Speaker verification report",
) -> dict[str, Path]:
    """Write the report of :func:`spkpeft.eval.pipeline.evaluate`'s ``results``; returns written paths.

    A trial list entry may carry ``provenance`` (what produced it: model, method, backbone, training
    data, test manifest, cohort and its size; see :mod:`spkpeft.eval.provenance`), shown in report.md;
    the scoring config and calibration are stored with each entry. Trial lists already in
    ``run_dir/report.json`` that this call does not evaluate keep their entries (with their own config,
    calibration and provenance), so evaluating a second list never erases the first."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    calibrator = results.get("calibrator")  # in report.json; the scorer saves the file verify uses
    for name, sc in results.get("scores", {}).items():
        written[f"scores/{name}"] = _write_scores(run_dir / "scores" / f"{_slug(name)}.tsv", sc)
    figures: dict[str, dict[str, Path]] = {}
    if plots:
        figures = _write_plots(run_dir / "plots", results, layer_values)
        written.update({f"{k}/{n}": p for n, figs in figures.items() for k, p in figs.items()})
    lists = _merged_lists(run_dir / "report.json", results, calibrator)
    payload = {
        "config": results.get("config", {}),
        "trial_lists": lists,
        "calibration": None if calibrator is None else calibrator.to_dict(),
        "layer_values": {k: [float(x) for x in v] for k, v in layer_series(layer_values or {}).items()},
    }
    written["json"] = run_dir / "report.json"
    written["json"].write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    written["markdown"] = run_dir / "report.md"
    now = results.get("trial_lists", {})
    figures = {n: figures.get(n, {}) if n in now else _existing_figures(run_dir, n) for n in lists} | (
        {"layers": figures["layers"]} if "layers" in figures else {}
    )
    written["markdown"].write_text(_markdown(title, {**results, "trial_lists": lists}, figures, run_dir))
    log.info("report written to %s", written["markdown"])
    return written


def _merged_lists(previous: Path, results: Mapping, calibrator: Any) -> dict[str, dict]:
    """Earlier entries of lists not evaluated now, then this call's lists (each with its own config,
    calibration and provenance)."""
    kept: dict[str, dict] = {}
    if previous.is_file():
        try:
            kept = dict(json.loads(previous.read_text()).get("trial_lists") or {})
        except (json.JSONDecodeError, AttributeError) as e:
            log.warning("%s is not a readable report (%s): earlier results are not carried over", previous, e)
    now = results.get("trial_lists", {})
    kept = {k: v for k, v in kept.items() if k not in now}
    current = {(v.get("provenance") or {}).get("model_fingerprint") for v in now.values()} - {None, ""}
    stale = [
        k for k, v in kept.items() if (v.get("provenance") or {}).get("model_fingerprint", "") not in current
    ]
    if current and stale:
        log.warning("report: dropping the earlier results of %s (another model version)", ", ".join(stale))
        kept = {k: v for k, v in kept.items() if k not in stale}
    if kept:
        log.info("report keeps the earlier results of %s", ", ".join(kept))
    cal = None if calibrator is None else calibrator.to_dict()
    extra = {"config": results.get("config", {}), "calibration": cal}
    return {**kept, **{k: {**v, **extra} for k, v in now.items()}}


def _existing_figures(run_dir: Path, name: str) -> dict[str, Path]:
    """The plots an earlier call wrote for trial list ``name``."""
    slug = _slug(name)
    cand = {"det": run_dir / "plots" / f"det_{slug}.png", "hist": run_dir / "plots" / f"scores_{slug}.png"}
    return {k: p for k, p in cand.items() if p.is_file()}


def _write_scores(path: Path, sc: Mapping) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    systems = [k for k in sc if k not in ("enroll", "test", "labels")]
    labels = sc.get("labels")
    cols = [np.asarray(sc[s]) for s in systems]
    lines = ["\t".join(["enroll", "test", "label", *systems])]
    for i, (e, t) in enumerate(zip(sc["enroll"], sc["test"])):
        lab = "" if labels is None else str(int(labels[i]))
        lines.append("\t".join([e, t, lab, *(f"{c[i]:.6f}" for c in cols)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_plots(
    plot_dir: Path, results: Mapping, layer_values: Mapping | None
) -> dict[str, dict[str, Path]]:
    from spkpeft.eval.plots import plot_det, plot_layer_analysis, plot_score_histograms

    out: dict[str, dict[str, Path]] = {}
    for name, sc in results.get("scores", {}).items():
        labels = sc.get("labels")
        metrics = results["trial_lists"][name]["systems"]
        if labels is None or not metrics:
            continue
        systems = {s: np.asarray(sc[s]) for s in metrics}
        curves = {SYSTEM_TITLES.get(s, s): det_curve(v, labels) for s, v in systems.items()}
        dcf_points = {
            SYSTEM_TITLES.get(s, s): [
                (f"minDCF p={p}", *operating_point(curves[SYSTEM_TITLES.get(s, s)], d["threshold"]))
                for p, d in metrics[s]["min_dcf"].items()
            ]
            for s in systems
        }
        eers = {SYSTEM_TITLES.get(s, s): metrics[s]["eer"] for s in systems}
        thr = {SYSTEM_TITLES.get(s, s): metrics[s]["eer_threshold"] for s in systems}
        thr = {k: v for k, v in thr.items() if v is not None}
        titled = {SYSTEM_TITLES.get(s, s): v for s, v in systems.items()}
        slug = _slug(name)
        out[name] = {
            "det": plot_det(curves, plot_dir / f"det_{slug}.png", f"DET: {name}", eers, dcf_points),
            "hist": plot_score_histograms(
                titled, labels, plot_dir / f"scores_{slug}.png", f"Scores: {name}", thr
            ),
        }
    if layer_values:
        out["layers"] = {"layers": plot_layer_analysis(layer_values, plot_dir / "layers.png")}
    return out


def _fmt(x: float | None, digits: int = 4) -> str:
    return "reject all" if x is None else f"{x:.{digits}f}"


def _markdown(title: str, results: Mapping, figures: Mapping, run_dir: Path) -> str:
    lines = [f"# {title}", ""]
    for name, entry in results.get("trial_lists", {}).items():
        p_targets = entry.get("config", results.get("config", {})).get("p_targets", [0.01, 0.05])
        lines += [f"## {name}", "", *_provenance_lines(entry.get("provenance") or {})]
        if not entry["systems"]:
            lines += [f"{entry['n_trials']} unlabelled trials: scores only (see `scores/`).", ""]
            continue
        lines += [
            f"{entry['n_trials']} trials ({entry['n_target']} target, {entry['n_nontarget']} non-target).",
            "",
        ]
        head = ["system", "EER (%)", "95 % CI", *(f"minDCF p={p:g}" for p in p_targets), "EER threshold"]
        head += [f"minDCF p={p:g} threshold" for p in p_targets]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for system, m in entry["systems"].items():
            dcf = [m["min_dcf"][f"{p:g}"] for p in p_targets]
            ci = m.get("eer_ci95")
            ci_text = "-" if ci is None else f"{100 * ci[0]:.2f}-{100 * ci[1]:.2f}"
            row = [SYSTEM_TITLES.get(system, system), f"{100 * m['eer']:.3f}", ci_text]
            row += [_fmt(d["value"]) for d in dcf] + [_fmt(m["eer_threshold"])]
            row += [_fmt(d["threshold"]) for d in dcf]
            lines.append("| " + " | ".join(row) + " |")
        cal = entry["systems"].get("calibrated")
        if cal is not None:
            act = ", ".join(
                f"actual DCF p={p:g} {_fmt(cal['act_dcf'][f'{p:g}'])} at LLR >= {bayes_threshold(p):.3f}"
                for p in p_targets
            )
            lines += [
                "",
                f"Calibrated scores are log-likelihood ratios: Cllr {_fmt(cal['cllr'])} bits; {act}.",
            ]
        for kind, fig in figures.get(name, {}).items():
            lines += ["", f"![{kind} {name}]({fig.relative_to(run_dir).as_posix()})"]
        lines.append("")
    if "layers" in figures:
        lines += [
            "## Layer analysis",
            "",
            f"![layers]({figures['layers']['layers'].relative_to(run_dir).as_posix()})",
            "",
        ]
    lines += [
        "## How to read this",
        "",
        "EER: error rate where misses equal false alarms. minDCF: normalised minimum detection cost with "
        "C_miss = C_fa = 1 at the stated target prior (1 = no better than always rejecting). Thresholds "
        "are scores at those operating points; they transfer to new data only for calibrated scores, "
        "where the Bayes threshold for prior p is log((1 - p) / p) on the LLR. cosine is the cosine "
        "similarity after subtracting the cohort's mean embedding (plain cosine when there is no cohort). "
        "The 95 % CI of the EER is a Wilson interval that assumes independent trials (effective count "
        "4 / (1/N_target + 1/N_non-target)); trials sharing utterances make the real interval wider. "
        "The DET plots mark the EER (filled) and the minDCF operating points (open markers).",
        "",
    ]
    return "\n".join(lines)


PROVENANCE_TITLES = {
    "model": "model",
    "method": "method",
    "backbone": "backbone",
    "training_data": "training data",
    "test_manifest": "test manifest",
    "trial_list": "trial list",
    "cohort": "AS-norm / calibration cohort",
    "evaluated_at": "evaluated",
}


def _provenance_lines(prov: Mapping) -> list[str]:
    """A bullet list of what produced a trial list's results (empty when unknown)."""
    lines = [f"- {title}: {prov[key]}" for key, title in PROVENANCE_TITLES.items() if prov.get(key)]
    return [*lines, ""] if lines else []
