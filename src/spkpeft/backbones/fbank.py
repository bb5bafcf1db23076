"""w2v-BERT 2.0's front end, variable length and batched: Kaldi-style log-mel filterbank (80 bins, 25 ms
frames every 10 ms), per-utterance mean/variance normalisation of each bin, frames stacked in pairs
(160 values every 20 ms), then the model's ``feature_projection`` (layer norm + linear) to width D.

The fbank maths is transformers' ``SeamlessM4TFeatureExtractor`` (what ``Wav2Vec2BertModel`` expects) in
torch: samples scaled to 16-bit range (x 32768), 400-sample frames without centring, each frame's DC
offset removed, pre-emphasis 0.97 (the first sample scaled by 0.03), Povey window, 512-point FFT power
spectrum, Kaldi mel filters (``transformers.audio_utils.mel_filter_bank``, 20 Hz - 8 kHz, triangular in
mel space), ``log(max(mel, 2**-23))``; then each bin minus its mean over the utterance's frames, divided
by ``sqrt(var + 1e-7)`` (unbiased variance, as the extractor's ``ddof=1``). Everything up to the
model's input is float64, as in transformers (in float32 the quiet bins of loud frames lose their
precision, and a padded row's statistics would round differently from the row's alone).

Lengths: a clip of n samples has ``(n - 400) // 160 + 1`` fbank frames and half as many (rounded down)
model frames; the extractor's last half-filled pair (odd frame counts) is masked out by its own
attention mask, and is dropped here. A clip needs 560 samples (35 ms) for one frame.

Padding: frames are taken over each row's real samples only, and the normalisation statistics over its
real frames only, so a padded row gets exactly the features of the row run alone; frames past its end
are zero. The fbank has no parameters and always runs under ``torch.no_grad()``; ``feature_encoder``
is an empty module (``full`` trains the projection, which runs with autograd). ``traceable`` (ONNX
export) computes the spectrum with one strided float32 convolution instead of unfold + FFT.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.audio_utils import mel_filter_bank, window_function

from spkpeft.backbones.families import FamilySpec, get_module
from spkpeft.backbones.front_end import FrontEnd
from spkpeft.data.config import SAMPLE_RATE

FRAME = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
PREEMPHASIS = 0.97
MEL_FLOOR = 1.192092955078125e-07  # float32 epsilon, Kaldi's floor
STACK = 2  # fbank frames per model frame


def fbank_frames(lengths: torch.Tensor) -> torch.Tensor:
    """(B,) samples -> (B,) fbank frames (25 ms windows every 10 ms, no centring)."""
    n = torch.div(lengths - FRAME, HOP, rounding_mode="floor") + 1
    return n.clamp(min=0)


class Fbank(FrontEnd):
    """The w2v-BERT 2.0 front end (see the module docstring): (B, S) -> (B, T, D)."""

    def __init__(self, model: nn.Module, spec: FamilySpec) -> None:
        super().__init__()
        if spec.projection is None:
            raise ValueError(f"family {spec.name!r}: front end 'fbank' needs a projection module path")
        self._parts = {"projection": get_module(model, spec.projection)}  # the model's own module
        self._empty = nn.Module()  # no parameters: the fbank is fixed
        num_mel = int(model.config.feature_projection_input_dim) // STACK
        filters = mel_filter_bank(
            num_frequency_bins=N_FFT // 2 + 1,
            num_mel_filters=num_mel,
            min_frequency=20,
            max_frequency=SAMPLE_RATE // 2,
            sampling_rate=SAMPLE_RATE,
            norm=None,
            mel_scale="kaldi",
            triangularize_in_mel_space=True,
        )  # (F, M) float64
        # float64 constants kept out of the module's buffers, so model.half() / .to(bfloat16) leave them be
        self._consts = {
            "mel": torch.from_numpy(filters).T.contiguous(),  # (M, F)
            "window": torch.from_numpy(window_function(FRAME, "povey", periodic=False)),  # (400,)
        }

    @property
    def feature_encoder(self) -> nn.Module:
        return self._empty

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) samples -> (B,) 20 ms model frames (pairs of fbank frames)."""
        return torch.div(fbank_frames(lengths), STACK, rounding_mode="floor").long()

    def traceable(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for ONNX export (no unfold, no FFT): the per-frame DC removal, pre-emphasis,
        window and DFT are one linear map of each 400-sample frame, run as a strided convolution, in
        float32 (ONNX runtimes convolve in float32); equal within float32 rounding."""
        return self.forward(wav, lengths, self._conv_power)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor, power_fn=None) -> torch.Tensor:  # noqa: ANN001
        with torch.no_grad():
            feats = self.features(wav, lengths, power_fn)
        proj = self._parts["projection"](feats.to(self._parts["projection"].projection.weight.dtype))
        return proj[0] if isinstance(proj, tuple) else proj

    def features(self, wav: torch.Tensor, lengths: torch.Tensor, power_fn=None) -> torch.Tensor:  # noqa: ANN001
        """wav (B, S), lengths (B,) -> the model's input features (B, T, 2M), zero past each row's end;
        equal to ``SeamlessM4TFeatureExtractor``'s ``input_features`` on each row's real frames."""
        fb = self.log_fbank(wav, power_fn)  # (B, N, M)
        n = fbank_frames(lengths)
        real = (torch.arange(fb.shape[1], device=fb.device)[None, :] < n[:, None]).to(fb.dtype)[..., None]
        count = n.to(fb.dtype)[:, None, None]
        mean = (fb * real).sum(1, keepdim=True) / count
        var = (((fb - mean) * real) ** 2).sum(1, keepdim=True) / (count - 1).clamp(min=1)
        fb = (fb - mean) / torch.sqrt(var + 1e-7) * real
        b, frames, m = fb.shape
        t = frames // STACK
        stacked = fb[:, : t * STACK].reshape(b, t, STACK * m)
        keep = torch.arange(t, device=fb.device)[None, :] < self.frame_lengths(lengths)[:, None]
        return (stacked * keep[..., None].to(stacked.dtype)).float()

    def log_fbank(self, wav: torch.Tensor, power_fn=None) -> torch.Tensor:  # noqa: ANN001
        """wav (B, S) in [-1, 1] -> Kaldi log-mel filterbank (B, (S - 400) // 160 + 1, M), float64."""
        power = (power_fn or self._fft_power)(wav)  # (B, N, F)
        mel = self._const("mel", wav.device).to(power.dtype)
        return (power @ mel.T).clamp(min=MEL_FLOOR).log().double()

    def _fft_power(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, S) -> power spectrum (B, N, F) in float64: frames, DC removal, pre-emphasis, window, FFT."""
        x = wav.double() * 32768.0  # float64 as transformers (float32 loses quiet bins of loud frames)
        if x.shape[1] < FRAME:
            x = nn.functional.pad(x, (0, FRAME - x.shape[1]))
        frames = x.unfold(1, FRAME, HOP)  # (B, N, 400)
        frames = frames - frames.mean(dim=-1, keepdim=True)
        first = frames[..., :1] * (1.0 - PREEMPHASIS)
        frames = torch.cat([first, frames[..., 1:] - PREEMPHASIS * frames[..., :-1]], dim=-1)
        spec = torch.fft.rfft(frames * self._const("window", x.device), n=N_FFT)  # (B, N, F)
        return spec.real**2 + spec.imag**2

    def _const(self, name: str, device: torch.device) -> torch.Tensor:
        """A float64 constant on ``device`` (copied there once)."""
        key = (name, str(device))
        if key not in self._consts:
            self._consts[key] = self._consts[name].to(device)
        return self._consts[key]

    def _conv_power(self, wav: torch.Tensor) -> torch.Tensor:
        """:meth:`_fft_power` as one strided convolution with the frame map's basis (2F, 1, 400), float32."""
        basis = self._frame_basis().to(device=wav.device, dtype=torch.float32)
        y = nn.functional.conv1d(wav.float()[:, None] * 32768.0, basis[:, None], stride=HOP)  # (B, 2F, N)
        f = N_FFT // 2 + 1
        return (y[:, :f] ** 2 + y[:, f:] ** 2).transpose(1, 2)

    def _frame_basis(self) -> torch.Tensor:
        """(2F, 400) float64: real and imaginary DFT rows of window x pre-emphasis x DC removal."""
        eye = torch.eye(FRAME, dtype=torch.float64)
        centre = eye - 1.0 / FRAME  # x - mean(x)
        pre = eye - PREEMPHASIS * torch.diag(torch.ones(FRAME - 1, dtype=torch.float64), -1)
        pre[0, 0] = 1.0 - PREEMPHASIS
        t = torch.arange(FRAME, dtype=torch.float64)
        k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)[:, None]
        angle = 2 * torch.pi * k * t / N_FFT
        dft = torch.cat([angle.cos(), -angle.sin()])  # (2F, 400): the frame zero-padded to 512
        return dft * self._consts["window"] @ pre @ centre
