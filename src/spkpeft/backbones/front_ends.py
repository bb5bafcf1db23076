"""Front ends: waveforms (B, S) -> frames (B, T, D) at model width, one registered name per kind.

A front end is built by ``FRONT_ENDS.build(spec.front_end, model, spec)`` and is a
:class:`~spkpeft.backbones.front_end.FrontEnd`:

- ``forward(wav (B, S), lengths (B,)) -> (B, T, D)``: padded rows give, on their first
  ``frame_lengths(lengths)`` frames, exactly the frames of the row run alone;
- ``frame_lengths(lengths (B,) samples) -> (B,) frames``;
- ``feature_encoder``: the module(s) with parameters that stay frozen by default (the CNN, Whisper's two
  convolutions); while none of its parameters requires grad it runs under ``torch.no_grad()``;
- ``traceable(wav, lengths)``: the same result without Python branches on the data (ONNX export);
- ``max_frames``: the most frames the family's positions can take (None: no limit).

Front ends hold references to the transformers model's own submodules without registering them (they
are the model's parameters, counted and saved once, with the model).

``waveform_cnn`` (WavLM, HuBERT, wav2vec2): the CNN feature encoder, then the feature projection.
Models with ``feat_extract_norm="group"`` (base models) normalise the first CNN layer over the whole
(padded) time axis, so when lengths differ the CNN runs per utterance at its true length; equal lengths
run in one call. ``log_mel`` (Whisper) is in :mod:`spkpeft.backbones.log_mel`, ``fbank`` (w2v-BERT 2.0)
in :mod:`spkpeft.backbones.fbank`.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from spkpeft.backbones.families import FamilySpec, get_module
from spkpeft.backbones.front_end import FrontEnd
from spkpeft.registry import Registry

FRONT_ENDS: Registry[FrontEnd] = Registry("front end")


class WaveformCnn(FrontEnd):
    """The wav2vec2-line CNN feature encoder + feature projection: (B, S) -> (B, T, D), 20 ms frames."""

    def __init__(self, model: nn.Module, spec: FamilySpec) -> None:
        super().__init__()
        if len(spec.feature_encoder) != 1 or spec.projection is None:
            raise ValueError(
                f"family {spec.name!r}: front end 'waveform_cnn' needs one feature_encoder path and a "
                f"projection, got {spec.feature_encoder} and {spec.projection!r}"
            )
        self._parts = {  # plain dict: referenced, not registered (they belong to the model)
            "cnn": get_module(model, spec.feature_encoder[0]),
            "projection": get_module(model, spec.projection),
            "model": model,
        }
        cfg = model.config
        self.group_norm = cfg.feat_extract_norm == "group"
        self.default_normalize_wav = cfg.feat_extract_norm == "layer"
        params = inspect.signature(model._get_feat_extract_output_lengths).parameters
        self._length_kwargs = {"add_adapter": False} if "add_adapter" in params else {}

    @property
    def feature_encoder(self) -> nn.Module:
        return self._parts["cnn"]

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) samples -> (B,) frames, by the model's own conv-length formula."""
        return self._parts["model"]._get_feat_extract_output_lengths(lengths, **self._length_kwargs).long()

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        with self.grad_mode():
            # under torch.compile: one batched graph whatever the lengths (no per-utterance shapes)
            compiling = torch.compiler.is_compiling()
            feats = self._masked_cnn(wav, lengths) if compiling else self._cnn(wav, lengths)  # (B, T, C)
        return self._project(feats)

    def traceable(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` without the per-utterance loop (:meth:`_masked_cnn`)."""
        return self._project(self._masked_cnn(wav, lengths))

    def _masked_cnn(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, T, C) in one batch: group-norm CNNs normalise layer 0 over each utterance's real
        frames only (a masked GroupNorm), which equals running it on the real frames (later convolutions
        see only real frames for the real outputs)."""
        layers = self.feature_encoder.conv_layers
        x = wav[:, None]
        if not self.group_norm:
            for layer in layers:
                x = layer(x)
            return x.transpose(1, 2)
        first = layers[0]
        x = first.conv(x)  # (B, C, T0)
        k, s = first.conv.kernel_size[0], first.conv.stride[0]
        n0 = torch.div(lengths - k, s, rounding_mode="floor") + 1  # real frames of layer 0
        m = (torch.arange(x.shape[2], device=x.device)[None, :] < n0[:, None]).to(x.dtype)[:, None, :]
        count = m.sum(dim=2, keepdim=True)
        mean = (x * m).sum(dim=2, keepdim=True) / count
        var = (((x - mean) * m) ** 2).sum(dim=2, keepdim=True) / count
        gn = first.layer_norm
        x = (x - mean) / torch.sqrt(var + gn.eps) * gn.weight[None, :, None] + gn.bias[None, :, None]
        x = first.activation(x)
        for layer in layers[1:]:
            x = layer(x)
        return x.transpose(1, 2)

    def _project(self, feats: torch.Tensor) -> torch.Tensor:
        proj = self._parts["projection"](feats)
        return proj[0] if isinstance(proj, tuple) else proj

    def _cnn(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, T, C); per utterance for group-norm CNNs when lengths differ."""
        cnn = self.feature_encoder
        if not self.group_norm or bool((lengths == lengths[0]).all()):
            return cnn(wav).transpose(1, 2)
        t = int(self.frame_lengths(torch.tensor(wav.shape[1])).item())
        outs = []
        for row, n in zip(wav, lengths.tolist()):
            f = cnn(row[None, :n]).transpose(1, 2)  # (1, T_b, C)
            outs.append(nn.functional.pad(f, (0, 0, 0, t - f.shape[1])))
        return torch.cat(outs)


@FRONT_ENDS.register("waveform_cnn")
def build_waveform_cnn(model: nn.Module, spec: FamilySpec) -> FrontEnd:
    """wav2vec2-line CNN waveform encoder + feature projection."""
    return WaveformCnn(model, spec)


@FRONT_ENDS.register("log_mel")
def build_log_mel(model: nn.Module, spec: FamilySpec) -> FrontEnd:
    """Whisper: log-mel spectrogram + two GELU convolutions (the second with stride 2)."""
    from spkpeft.backbones.log_mel import LogMelConvs

    return LogMelConvs(model, spec)


@FRONT_ENDS.register("fbank")
def build_fbank(model: nn.Module, spec: FamilySpec) -> FrontEnd:
    """w2v-BERT 2.0: Kaldi log-mel fbank, normalised per utterance, stacked in pairs, + feature projection."""
    from spkpeft.backbones.fbank import Fbank

    return Fbank(model, spec)
