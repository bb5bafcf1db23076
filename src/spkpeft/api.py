"""``SpeakerVerifier``: embed audio and verify speaker pairs with a trained run or an exported model.

>>> from spkpeft import SpeakerVerifier
>>> v = SpeakerVerifier.from_pretrained("runs/unipet")          # or an `spkpeft export` directory
>>> r = v.verify("a.wav", "b.wav")
>>> r.score, r.decision, r.threshold

Scores are computed exactly as in the run's evaluation report (``spkpeft eval``), by the
:class:`~spkpeft.eval.scorer.Scorer` that evaluation fitted and saved with the model (``MODEL/scoring/``):
cosine after subtracting the training mean, AS-norm against the run's cohort, then the quality-aware
calibration.

Threshold meaning. With a calibration (``MODEL/scoring/calibration.json``, written by
``spkpeft eval``) the score is a log-likelihood ratio and ``decision`` is "same" when
``score >= log((1 - p) / p)``, the Bayes decision at target prior ``p = p_target`` (default 0.01:
threshold 4.595) with equal miss and false-alarm costs; it needs no tuning on test data. Without a
calibration the score is the uncalibrated (AS-norm or cosine) score and the threshold is its EER
threshold on the first labelled trial list of the evaluation; before any evaluation there is no
threshold and ``decision`` is None.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from spkpeft.eval.embed import ChunkSettings
    from spkpeft.eval.scorer import Scorer
    from spkpeft.model import SpeakerModel

log = logging.getLogger(__name__)


@dataclass
class VerificationResult:
    """``score``: calibrated LLR (or uncalibrated score, see ``calibrated``); ``decision``: "same",
    "different", or None when no threshold is known; ``threshold`` on ``score``; ``system``: which
    scoring produced ``score`` (``calibrated``, ``asnorm``, or ``cosine``: the report's ``cosine``, after
    subtracting the cohort's mean embedding; plain cosine for a never-evaluated model);
    ``raw_cosine``: the plain cosine similarity of the two raw embeddings, no mean subtracted (for
    reference; it is not the report's ``cosine``)."""

    score: float
    decision: str | None
    threshold: float | None
    calibrated: bool
    system: str
    threshold_meaning: str
    raw_cosine: float

    @property
    def same_speaker(self) -> bool | None:
        return None if self.decision is None else self.decision == "same"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SpeakerVerifier:
    """A loaded speaker model plus its scorer (mean, cohort, calibrator, threshold)."""

    def __init__(
        self, model: SpeakerModel, scorer: Scorer, chunks: ChunkSettings, p_target: float = 0.01
    ) -> None:
        if not 0.0 < p_target < 1.0:
            raise ValueError(f"p_target must lie in (0, 1), got {p_target}")
        self.model, self.scorer, self.chunks, self.p_target = model, scorer, chunks, p_target

    @classmethod
    def from_pretrained(
        cls,
        run_or_dir: str | Path,
        device: str | None = None,
        p_target: float = 0.01,
        chunk_seconds: float | None = None,
        overlap_seconds: float | None = None,
    ) -> SpeakerVerifier:
        """Load a run directory (its ``model/``) or a model directory (an export), with its scorer.

        Chunk settings default to those the run was evaluated with (``scoring.json``), else 20 s / 2 s.
        """
        from spkpeft.eval.embed import ChunkSettings
        from spkpeft.eval.scorer import Scorer
        from spkpeft.model import default_device, load_speaker_model, model_dir_of

        model_dir = model_dir_of(run_or_dir)
        model = load_speaker_model(model_dir, device=device or default_device())
        scorer = Scorer.load(model_dir)
        chunks = ChunkSettings(
            chunk_seconds or scorer.chunk_seconds,
            scorer.overlap_seconds if overlap_seconds is None else overlap_seconds,
        )
        chunks.samples()
        log.info(
            "speaker verifier from %s: %s scores%s",
            model_dir,
            scorer.system,
            ", calibrated" * scorer.calibrated,
        )
        return cls(model, scorer, chunks, p_target)

    @property
    def threshold(self) -> float | None:
        return self.scorer.threshold(self.p_target)

    @property
    def threshold_meaning(self) -> str:
        if self.scorer.calibrated:
            return (
                f"Bayes decision on the calibrated LLR at target prior {self.p_target:g} "
                f"(accept when LLR >= log((1-p)/p) = {self.threshold:.3f})"
            )
        if self.threshold is not None:
            return f"uncalibrated {self.scorer.system} score; {self.scorer.threshold_source}"
        return f"uncalibrated {self.scorer.system} score; no threshold (run `spkpeft eval` to get one)"

    def embed(self, audio: str | Path | np.ndarray, sample_rate: int | None = None) -> np.ndarray:
        """Embedding (E,) float32 of an audio file (any soundfile format, any rate, stereo mixed down)
        or an array (S,) / (S, C) with its ``sample_rate``. Long inputs are chunk-averaged."""
        from spkpeft.eval.embed import embed_waveform

        return embed_waveform(self.model, self._load(audio, sample_rate), self.chunks, _name(audio))

    def verify(
        self,
        a: str | Path | np.ndarray,
        b: str | Path | np.ndarray,
        sample_rate: int | None = None,
    ) -> VerificationResult:
        """Score the pair (a, b) (files or arrays at ``sample_rate``) and decide at :attr:`threshold`."""
        from spkpeft.data.config import SAMPLE_RATE
        from spkpeft.data.trials import Trial
        from spkpeft.eval.embed import embed_waveform
        from spkpeft.eval.table import EmbeddingTable

        wa, wb = self._load(a, sample_rate), self._load(b, sample_rate)
        ea = embed_waveform(self.model, wa, self.chunks, _name(a))
        eb = embed_waveform(self.model, wb, self.chunks, _name(b))
        table = EmbeddingTable(["a", "b"], np.stack([ea, eb]), [len(wa) / SAMPLE_RATE, len(wb) / SAMPLE_RATE])
        scores = self.scorer.score(table, [Trial("a", "b", None)])
        score = float(self.scorer.final(scores)[0])
        thr = self.threshold
        decision = None if thr is None else ("same" if score >= thr else "different")
        cos = float(ea @ eb / max(np.linalg.norm(ea) * np.linalg.norm(eb), 1e-12))
        system = "calibrated" if self.scorer.calibrated else self.scorer.system
        return VerificationResult(
            score, decision, thr, self.scorer.calibrated, system, self.threshold_meaning, cos
        )

    @staticmethod
    def _load(audio: str | Path | np.ndarray, sample_rate: int | None) -> np.ndarray:
        from spkpeft.data.audio import read_audio, to_mono_16k

        if isinstance(audio, (str, Path)):
            if sample_rate is not None:
                raise ValueError("sample_rate is only for array input; a file's rate is read from the file")
            return read_audio(audio)
        if sample_rate is None:
            raise ValueError("array input needs sample_rate= (the rate of the samples given)")
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim not in (1, 2) or x.shape[0] == 0:
            raise ValueError(f"audio array must be (S,) or (S, channels) with S > 0, got shape {x.shape}")
        return to_mono_16k(x, int(sample_rate))


def _name(audio: str | Path | np.ndarray) -> str:
    return f"audio file {audio}" if isinstance(audio, (str, Path)) else "the audio array"
