"""``spkpeft export RUN OUT``: one self-contained directory with everything inference needs.

Layout of OUT::

    README.md            model card (method, backbone, parameters, EER, threshold meaning, how to load)
    model.json           as spkpeft.model.save_model writes it; backbone.name_or_path = "backbone"
    backbone/            the transformers model (save_pretrained): merged weights when the method can
                         merge (lora, dora, pissa, spectral, full, frozen; the method entry is then
                         ``frozen``), else the plain pre-trained backbone
    method/              the method's own parameters (method.safetensors + method.json)
    backend.safetensors  the back-end
    scoring/             the scorer (spkpeft.eval.scorer: scoring.json, cohort.safetensors,
                         calibration.json) when the run was evaluated (spkpeft eval)
    model.onnx           with --onnx: wav (B, S), lengths (B,) -> embeddings (B, E)

``SpeakerVerifier.from_pretrained(OUT)`` and ``spkpeft.model.load_speaker_model(OUT)`` load it without
the run, a preset or the hub; the export checks that it gives the run's embeddings.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from spkpeft.atomic import replace_dir
from spkpeft.eval.scorer import FILES, SCORING_DIR, scoring_dir
from spkpeft.inference.probe import probe_waveforms, relative_error
from spkpeft.model import load_speaker_model, model_dir_of, run_dir_of

log = logging.getLogger(__name__)

BACKBONE_DIR = "backbone"
CHECK_TOLERANCE = 1e-4


def export_model(
    run_or_dir: str | Path,
    out: str | Path,
    onnx: bool = False,
    overwrite: bool = False,
    check: bool = True,
) -> dict[str, Any]:
    """Write the export (see the module docstring); returns a summary dict (paths, merged, check error)."""
    model_dir = model_dir_of(run_or_dir)
    run = run_dir_of(model_dir)
    out = Path(out)
    _refuse_overlap(out, model_dir, run or model_dir)
    _refuse_existing(out, overwrite)
    model = load_speaker_model(model_dir, device="cpu")
    # written to a temporary sibling and swapped in only once checked: a failed or interrupted export
    # leaves no half export, and --force keeps the earlier export until the new one is complete
    summary = replace_dir(out, lambda tmp: _write_export(model, model_dir, run, tmp, out, onnx, check))
    log.info("exported %s to %s (%s)", model_dir, out, "merged" if summary["merged"] else "method kept apart")
    return summary


def _write_export(
    model: Any, model_dir: Path, run: Path | None, out: Path, final: Path, onnx: bool, check: bool
) -> dict[str, Any]:
    """Fill the folder ``out`` (to be renamed ``final``) with the export of ``model``; returns the
    summary, whose paths are under ``final``."""
    merged = _save_backbone_and_method(model, out)
    shutil.copyfile(model_dir / "backend.safetensors", out / "backend.safetensors")
    meta = json.loads((model_dir / "model.json").read_text())
    meta["source_backbone"] = meta["backbone"]["name_or_path"]
    meta["backbone"] = {
        **meta["backbone"],
        "name_or_path": BACKBONE_DIR,
        "config_overrides": {},  # baked into backbone/config.json
        "normalize_wav": bool(model.backbone.normalize_wav),
        "init_seed": None,
    }
    meta["method"] = "frozen" if merged else model.method.name
    meta["source_method"] = model.method.name
    (out / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    scorer = scoring_dir(model_dir)  # MODEL/scoring/, or where a run evaluated before kept it
    for name in FILES:
        if (scorer / name).is_file():
            (out / SCORING_DIR).mkdir(exist_ok=True)
            shutil.copyfile(scorer / name, out / SCORING_DIR / name)
    summary: dict[str, Any] = {"out": final, "merged": merged, "method": model.method.name}
    exported = load_speaker_model(out, device="cpu") if check or onnx else None
    if check:
        summary["max_rel_err"] = check_export(model, exported, final)
    if onnx:
        from spkpeft.inference.onnx_export import export_onnx

        onnx_summary = export_onnx(exported, out / "model.onnx")  # the plain (merged) model
        summary["onnx"] = {**onnx_summary, "path": final / "model.onnx"}
    from spkpeft.inference.model_card import write_model_card

    report = (run or model_dir) / "report.json"
    write_model_card(out, model, meta, merged, report if report.is_file() else None, name=final.name)
    return summary


def _refuse_overlap(out: Path, model_dir: Path, root: Path) -> None:
    """OUT must not be the source model, its run, a directory holding either, or inside the model: with
    --force, preparing OUT deletes it before the model is read."""
    o, m = out.resolve(), model_dir.resolve()
    for src in (m, root.resolve()):
        if o == src or o in src.parents or (src == m and m in o.parents):
            raise ValueError(
                f"export target {out} overlaps the model being exported ({model_dir}); writing it would "
                "delete or change the source. Choose a directory outside the run and the model"
            )


def _refuse_existing(out: Path, overwrite: bool) -> None:
    """A non-empty OUT is replaced only with ``overwrite`` (--force), and only when it is an export."""
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; choose a new directory or pass --force")
        if not (out / "model.json").is_file():
            raise FileExistsError(f"{out} is not an earlier export (no model.json); refusing to overwrite it")


def _save_backbone_and_method(model: Any, out: Path) -> bool:
    """Save the (merged) transformers model to OUT/backbone and the method to OUT/method; True if merged."""
    from spkpeft.methods.base import MergeNotSupported
    from spkpeft.methods.frozen import Frozen, FrozenConfig
    from spkpeft.methods.io import save_method

    try:
        hf = model.method.merge()
        merged = True
    except MergeNotSupported as e:
        log.info("%s; exporting the backbone and the method's parameters apart", e)
        hf, merged = model.backbone.model, False
    hf.save_pretrained(out / BACKBONE_DIR)
    if merged:
        # a frozen method on the merged backbone: nothing to load beyond the backbone weights
        save_method(Frozen(FrozenConfig(), model.backbone), out / "method")
    else:
        save_method(model.method, out / "method")
    return merged


def check_export(model: Any, exported: Any, out: Path) -> float:
    """Compare the embeddings of the run's ``model`` and the ``exported`` one (loaded from ``out``) on
    probe signals; raise if they differ."""
    wav, lengths = probe_waveforms()
    ref = model.embed(wav, lengths)
    got = exported.embed(wav, lengths)
    err = relative_error(ref, got)
    if not err < CHECK_TOLERANCE:
        raise RuntimeError(
            f"the exported model in {out} gives other embeddings than the run (relative error {err:.2e} "
            f">= {CHECK_TOLERANCE:g}); please report this with the method name ({model.method.name})"
        )
    log.info("export check: embeddings match the run (max relative error %.2e)", err)
    return err
