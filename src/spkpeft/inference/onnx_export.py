"""ONNX export of the whole embedding model: ``wav`` (B, S) float32, ``lengths`` (B,) int64 ->
``embedding`` (B, E), with dynamic batch size and length.

:class:`TraceableEmbedder` runs the same computation as ``SpeakerModel.forward`` without the Python
branches that depend on the data (which an exporter would freeze to the example's values):

- the utterance mask is always built and passed (an all-real batch gives the same result);
- the front end runs its ``traceable`` form: group-norm CNNs (base models) normalise the first
  convolution's output over each utterance's real frames only (a masked GroupNorm), which equals the
  backbone's per-utterance CNN run on the real frames without a loop over the batch.

The graph is checked with ``onnx.checker`` and run against PyTorch on a padded batch of another size
than the export example, with onnxruntime when it is installed, else with ONNX's reference evaluator
(pure NumPy: slow on large models, fine for checking). The TorchScript exporter (``dynamo=False``) is
tried first: ``torch.export`` (``dynamo=True``) currently stops at the backbone's per-length attention
cache (``unhashable type: SymInt``) and is kept as the fallback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

ONNX_TOLERANCE = 1e-3


class TraceableEmbedder(nn.Module):
    """``SpeakerModel`` as one export-friendly forward: (B, S), (B,) -> (B, E)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        from spkpeft.backbones.backbone import _normalize

        bb = self.model.backbone
        lengths = lengths.to(torch.int64)
        if bb.normalize_wav:
            wav = _normalize(wav, lengths)
        h = bb.front_end.traceable(wav, lengths)  # (B, T, D)
        out = bb.encode(h, bb.frame_lengths(lengths), always_mask=True)
        return self.model.backend(out.hidden_states, out.mask, post_aggregate=self.model._post_aggregate())


def export_onnx(model: Any, path: str | Path, opset: int = 18) -> dict[str, Any]:
    """Write ``path`` (model.onnx) and check it; returns {"path", "max_rel_err", "checker", "exporter"}.

    Exporters are tried in turn (TorchScript tracing, then torch.export/dynamo); the first whose graph
    passes ``onnx.checker`` and matches PyTorch on a padded batch of another size than the export
    example wins. Raises RuntimeError with every exporter's failure when none does.
    """
    import onnx

    from spkpeft.inference.probe import probe_waveforms, relative_error

    path = Path(path)
    model = model.eval()
    embedder = TraceableEmbedder(model).eval()
    example = probe_waveforms((1.0, 1.6))
    wav2, len2 = probe_waveforms((0.9, 2.2, 1.4), seed=1)  # other batch size and lengths, padded
    ref = model.embed(wav2, len2)
    failures = []
    for exporter in ("torchscript", "dynamo"):
        try:
            with torch.no_grad():
                _export(embedder, example, path, opset, dynamo=exporter == "dynamo")
            onnx.checker.check_model(str(path), full_check=True)
            got, checker = run_onnx(path, wav2, len2)
        except Exception as e:  # an exporter that cannot handle the model: try the next one
            failures.append(f"{exporter}: {type(e).__name__}: {str(e)[:300]}")
            log.warning("ONNX export with %s failed: %s", exporter, failures[-1])
            continue
        err = relative_error(ref, torch.from_numpy(got))
        if err < ONNX_TOLERANCE:
            log.info(
                "ONNX export %s (%s) matches PyTorch: max relative error %.2e (%s)",
                path,
                exporter,
                err,
                checker,
            )
            return {"path": path, "max_rel_err": err, "checker": checker, "exporter": exporter}
        failures.append(f"{exporter}: output differs from PyTorch (relative error {err:.2e}, {checker})")
    path.unlink(missing_ok=True)
    raise RuntimeError(f"ONNX export of {model.method.name} failed: " + "; ".join(failures))


def _export(embedder: nn.Module, args: tuple, path: Path, opset: int, dynamo: bool) -> None:
    names = dict(input_names=["wav", "lengths"], output_names=["embedding"])
    if dynamo:
        batch, samples = torch.export.Dim("batch"), torch.export.Dim("samples", min=400)
        torch.onnx.export(
            embedder,
            args,
            str(path),
            dynamo=True,
            dynamic_shapes={"wav": {0: batch, 1: samples}, "lengths": {0: batch}},
            opset_version=opset,
            external_data=False,
            **names,
        )
        return
    axes = {"wav": {0: "batch", 1: "samples"}, "lengths": {0: "batch"}, "embedding": {0: "batch"}}
    torch.onnx.export(
        embedder, args, str(path), dynamo=False, dynamic_axes=axes, opset_version=opset, **names
    )


def run_onnx(path: str | Path, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[Any, str]:
    """Embeddings (B, E) numpy from the ONNX file; onnxruntime if installed, else the reference evaluator."""
    feeds = {"wav": wav.numpy(), "lengths": lengths.to(torch.int64).numpy()}
    try:
        import onnxruntime as ort
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(str(path)).run(None, feeds)[0], "onnx.reference"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0], "onnxruntime"
