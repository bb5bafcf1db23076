"""Whisper's front end, variable length and batched: log-mel spectrogram, then conv1 + GELU, conv2
(stride 2) + GELU. 16 kHz input, 25 ms Hann window (400 samples), 10 ms hop (160), so a clip of n
samples has ``n // 160`` mel frames and ``(n // 160 - 1) // 2 + 1`` output frames of 20 ms.

The log-mel maths is transformers' ``WhisperFeatureExtractor`` (its torch path: power spectrum of the
centred STFT, last frame dropped, Slaney mel filters from ``transformers.audio_utils.mel_filter_bank``,
``log10(max(mel, 1e-10))``, floor at the utterance's peak - 8, then ``(x + 4) / 4``), without padding
every clip to 30 s. What that padding did is kept where it matters:

- after the clip the signal is zero (the 30 s padding), so frames that straddle the clip's end see
  zeros, not a reflection; the start is reflected, as ``torch.stft(center=True)`` does, and so is the
  end of a clip that fills the 30 s window (samples past the window are dropped, as transformers does);
- the peak for the floor is taken over the clip's own frames.

A padded batch gives each row the frames of the row run alone: mel frames past a row's end are set to
zero before conv1 and conv1's outputs past its end before conv2, which is what the convolutions' own
zero padding shows them when the row runs alone. The log-mel has no parameters and always runs under
``torch.no_grad()``; the convolutions are the front end's ``feature_encoder`` (frozen by default).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers.audio_utils import mel_filter_bank

from spkpeft.backbones.families import FamilySpec, get_module
from spkpeft.backbones.front_end import FrontEnd
from spkpeft.data.config import SAMPLE_RATE

N_FFT = 400
HOP = 160


def conv_out_lengths(conv: nn.Conv1d, lengths: torch.Tensor) -> torch.Tensor:
    """(B,) input lengths -> (B,) output lengths of a 1-D convolution (PyTorch's formula)."""
    (k,), (s,), (p,), (d,) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    return torch.div(lengths + 2 * p - d * (k - 1) - 1, s, rounding_mode="floor") + 1


def _mask_time(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero x (B, C, T) at t >= lengths[b]."""
    keep = torch.arange(x.shape[2], device=x.device)[None, :] < lengths[:, None]
    return x * keep[:, None, :].to(x.dtype)


class ConvStem(nn.Module):
    """GELU convolutions over (B, C, T) features with per-row lengths; outputs past a row's end are zero.

    Holds the model's own convolutions (``feature_encoder`` of the front end; its parameters are the
    model's, so hooks and ``requires_grad_`` act on them).
    """

    def __init__(self, convs: list[nn.Conv1d]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, C, T_mel), lengths (B,) mel frames -> (B, D, T)."""
        for conv in self.convs:
            lengths = conv_out_lengths(conv, lengths)
            x = _mask_time(nn.functional.gelu(conv(x)), lengths)
        return x


class LogMelConvs(FrontEnd):
    """The Whisper front end (see the module docstring): (B, S) -> (B, T, D)."""

    def __init__(self, model: nn.Module, spec: FamilySpec) -> None:
        super().__init__()
        convs = [get_module(model, p) for p in spec.feature_encoder]
        self._stem = [ConvStem(convs)]  # a list: the convolutions belong to (and are registered in) the model
        device = convs[0].weight.device
        filters = mel_filter_bank(
            num_frequency_bins=1 + N_FFT // 2,
            num_mel_filters=model.config.num_mel_bins,
            min_frequency=0.0,
            max_frequency=8000.0,
            sampling_rate=SAMPLE_RATE,
            norm="slaney",
            mel_scale="slaney",
        )  # (F, M) float64
        mel = torch.from_numpy(filters).to(device=device, dtype=torch.float32).T.contiguous()
        self.register_buffer("mel_filters", mel, persistent=False)  # (M, F)
        self.register_buffer("window_fn", torch.hann_window(N_FFT, device=device), persistent=False)
        self.max_frames = int(model.config.max_source_positions)
        strides = [c.stride[0] for c in convs]
        self.window = self.max_frames * HOP * math.prod(strides)  # 30 s: 480,000 samples

    @property
    def feature_encoder(self) -> nn.Module:
        return self._stem[0]

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) samples -> (B,) 20 ms frames: ``n // 160`` mel frames through the convolutions."""
        n = torch.div(lengths, HOP, rounding_mode="floor")
        for conv in self.feature_encoder.convs:
            n = conv_out_lengths(conv, n)
        return n.clamp(min=0).long()

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._run(wav, lengths, self._stft_power)

    def traceable(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with the STFT as a convolution with the windowed Fourier basis (ONNX has no
        complex STFT); equal within float rounding. Shape-dependent choices are fixed at export: an
        exported graph leaves out the end reflection of clips that fill the 30 s window."""
        return self._run(wav, lengths, self._dft_power)

    def _run(self, wav: torch.Tensor, lengths: torch.Tensor, power_fn) -> torch.Tensor:  # noqa: ANN001
        mel_len = torch.div(lengths, HOP, rounding_mode="floor")
        with torch.no_grad():
            mel = self.log_mel(wav, lengths, power_fn)
        convs = self.feature_encoder
        with self.grad_mode():
            return convs(mel.to(convs.convs[0].weight.dtype), mel_len).transpose(1, 2)

    def log_mel(self, wav: torch.Tensor, lengths: torch.Tensor, power_fn=None) -> torch.Tensor:  # noqa: ANN001
        """wav (B, S) float, lengths (B,) real samples -> log-mel (B, M, S // 160), zero past each end."""
        half = N_FFT // 2
        n = lengths.clamp(max=self.window)  # transformers truncates to the window too
        x = wav[:, : self.window].float()
        x = x * (torch.arange(x.shape[1], device=x.device)[None, :] < n[:, None])
        s = x.shape[1]
        x = nn.functional.pad(x, (0, max(0, half + 1 - s)))  # the reflection at the start needs half + 1
        right = x.new_zeros(x.shape[0], half)  # after a clip: the zeros of the window's padding
        if s == self.window:  # a clip filling the window ends reflected, as torch.stft(center=True) pads it
            tail = x[:, s - half - 1 : s - 1].flip(-1)
            right = torch.where((n == self.window)[:, None], tail, right)
        x = torch.cat([x[:, 1 : half + 1].flip(-1), x, right], dim=1)
        power = (power_fn or self._stft_power)(x)[..., : s // HOP]  # (B, F, T_mel)
        log_spec = (self.mel_filters @ power.contiguous()).clamp(min=1e-10).log10()  # (B, M, T_mel)
        mel_len = torch.div(n, HOP, rounding_mode="floor")
        real = torch.arange(log_spec.shape[2], device=x.device)[None, :] < mel_len[:, None]  # (B, T_mel)
        peak = log_spec.masked_fill(~real[:, None, :], float("-inf")).amax(dim=(1, 2), keepdim=True)
        log_spec = (torch.maximum(log_spec, peak - 8.0) + 4.0) / 4.0
        return _mask_time(log_spec, mel_len)

    def _stft_power(self, x: torch.Tensor) -> torch.Tensor:
        """Padded signal (B, S') -> power spectrum (B, F, 1 + (S' - 400) // 160)."""
        return torch.stft(x, N_FFT, HOP, window=self.window_fn, center=False, return_complex=True).abs() ** 2

    def _dft_power(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`_stft_power` as one strided convolution with the windowed cos / sin basis (2F, 1, 400)."""
        f = N_FFT // 2 + 1
        t = torch.arange(N_FFT, device=x.device, dtype=torch.float64)
        angle = 2 * torch.pi * torch.arange(f, device=x.device, dtype=torch.float64)[:, None] * t / N_FFT
        basis = torch.cat([angle.cos(), -angle.sin()]) * self.window_fn.double()  # (2F, 400)
        y = nn.functional.conv1d(x[:, None], basis.to(x.dtype)[:, None], stride=HOP)  # (B, 2F, T)
        return y[:, :f] ** 2 + y[:, f:] ** 2
