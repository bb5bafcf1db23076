"""The model card (README.md) of an exported model: what it is, how good, what the threshold means, how
to load it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spkpeft.eval.metrics import bayes_threshold
from spkpeft.eval.scorer import Scorer


def _count(params: Any) -> int:
    return int(sum(p.numel() for p in params))


def _results_table(report: dict) -> list[str]:
    lines = ["| trial list | system | EER (%) | minDCF p=0.01 |", "|---|---|---|---|"]
    for name, entry in report.get("trial_lists", {}).items():
        for system, m in entry.get("systems", {}).items():
            dcf = m.get("min_dcf", {}).get("0.01", {}).get("value")
            dcf_s = "n/a" if dcf is None else f"{dcf:.4f}"
            lines.append(f"| {name} | {system} | {100 * m['eer']:.3f} | {dcf_s} |")
    return lines if len(lines) > 2 else ["No labelled trial list in the report."]


def _threshold_text(scorer: Scorer) -> str:
    if scorer.calibrated:
        return (
            "Scores are calibrated log-likelihood ratios (LLR; 0 = neutral evidence, +2.3 = 10x likelier "
            "same speaker). `verify` decides *same* when `LLR >= log((1 - p) / p)`, the Bayes decision "
            f"at target prior p with equal costs: {bayes_threshold(0.01):.3f} for p = 0.01 (default), "
            f"{bayes_threshold(0.05):.3f} for p = 0.05, 0 for p = 0.5 (`--p-target`)."
        )
    if scorer.eer_threshold is not None:
        return (
            f"Uncalibrated {scorer.system} scores; the decision threshold {scorer.eer_threshold:.4f} is the "
            f"{scorer.threshold_source or 'EER threshold of the evaluation'}."
        )
    return (
        "Uncalibrated cosine scores and no threshold: the run was not evaluated (`spkpeft eval`) before "
        "export, so `verify` reports scores without a decision."
    )


def write_model_card(
    out: Path, model: Any, meta: dict, merged: bool, report_path: Path | None, name: str | None = None
) -> Path:
    """Write ``out/README.md`` for the export of ``model`` (``meta``: the exported model.json; ``name``:
    the folder name the card shows, ``out.name`` by default)."""
    name = name or out.name
    method = meta["source_method"]
    n_method = 0 if method in ("frozen", "full") else _count(model.method.own_parameters().values())
    if method == "full":
        n_method = _count(model.backbone.parameters())
    n_backend = _count(model.backend.parameters())
    n_backbone = _count(model.backbone.parameters())
    bb = model.backbone
    how = "merged into the backbone weights" if merged else "parameters in method/"
    arch = f"{bb.spec.name}, {bb.num_layers} layers, hidden {bb.hidden_size}, {n_backbone:,} parameters"
    head = f"`{meta['backend']['name']}`, embedding dimension {meta['embed_dim']}"
    lines = [
        f"# Speaker embedding model: {method} on {meta['source_backbone']}",
        "",
        "Exported by `spkpeft export`. Self-contained: the backbone is in `backbone/` (transformers format).",
        "",
        "| | |",
        "|---|---|",
        f"| method | `{method}` ({how}) |",
        f"| backbone | `{meta['source_backbone']}` ({arch}) |",
        f"| back-end | {head} ({n_backend:,} parameters) |",
        f"| trained parameters | {n_method + n_backend:,} (method {n_method:,} + back-end {n_backend:,}) |",
        "| input | mono waveform at 16 kHz (files of any rate/channels are converted) |",
        "",
        "## Results",
        "",
    ]
    if report_path is not None:
        lines += [
            f"From the run's `{report_path.name}`:",
            "",
            *_results_table(json.loads(report_path.read_text())),
        ]
    else:
        lines.append("The run was not evaluated before export (no report.json).")
    lines += [
        "",
        "## Threshold",
        "",
        _threshold_text(Scorer.load(out)),
        "",
        "## How to load",
        "",
        "```python",
        "from spkpeft import SpeakerVerifier",
        "",
        f'v = SpeakerVerifier.from_pretrained("{name}")',
        'emb = v.embed("a.wav")            # (E,) numpy',
        'r = v.verify("a.wav", "b.wav")    # r.score, r.decision, r.threshold',
        "```",
        "",
        "```sh",
        f"spkpeft verify a.wav b.wav --model {name}",
        f"spkpeft embed-file a.wav --model {name} --out a.npy",
        "```",
        "",
    ]
    if (out / "model.onnx").is_file():
        lines += [
            "`model.onnx`: inputs `wav` (B, S) float32 at 16 kHz (zero-padded) and `lengths` (B,) int64, "
            "output `embedding` (B, E) raw (unnormalised) embeddings. Score them like the Python API "
            "does only if you also apply the scorer in `scoring/` (`scoring.json`, `cohort.safetensors`, "
            "`calibration.json`); plain cosine otherwise.",
            "",
        ]
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path
