"""Mixture manifests -> batches for :class:`~spkpeft.tsasr.model.TSWhisper`.

A mixture cut (see :mod:`spkpeft.tsasr.simulate`) gives the mixed audio, the target transcript
(supervision ``text``) and the enrolment utterance (``custom["enroll_id"]``, ``custom["enroll_path"]``).
A batch is ``{"features": (B, 80, N), "speaker": (B, E), "decoder_input_ids": (B, U), "labels": (B, U),
"texts": list[str], "ids": list[str]}``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

import spkpeft.data  # noqa: F401  (lhotse import shim)
from spkpeft.data.config import SAMPLE_RATE as SR
from spkpeft.tsasr.embeddings import CallableEmbeddings, EmbeddingSource, FileEmbeddings, MelStatsEmbedder

log = logging.getLogger(__name__)


def build_source(section) -> EmbeddingSource:  # noqa: ANN001
    """A :class:`~spkpeft.tsasr.config.SpeakerSection` -> an :class:`EmbeddingSource`."""
    if section.source == "melstats":
        return CallableEmbeddings(MelStatsEmbedder(section.n_mels), name="melstats")
    if not section.path:
        raise ValueError(f"speaker.source={section.source} needs speaker.path")
    if section.source == "file":
        return FileEmbeddings(section.path)
    try:
        from spkpeft.api import SpeakerVerifier  # type: ignore[attr-defined]
    except ImportError as e:
        raise ValueError(f"speaker.source=verifier needs spkpeft.api.SpeakerVerifier ({e})") from None
    verifier = SpeakerVerifier.from_pretrained(section.path)
    return CallableEmbeddings(verifier.embed, name=f"verifier:{section.path}")


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Any soundfile format -> (mono float32 (S,) at 16 kHz, 16000), through :mod:`spkpeft.data.audio`
    (resampled, NaN/inf refused naming the file)."""
    from spkpeft.data.audio import read_audio as read16k

    return read16k(path, sample_rate=SR), SR


class MixtureData(torch.utils.data.Dataset):
    """Items ``(id, wav (S,), speaker embedding (E,), text)`` from a mixture CutSet file."""

    def __init__(self, manifest: str | Path, source: EmbeddingSource, cache: bool = False) -> None:
        from lhotse import CutSet

        path = Path(manifest)
        if not path.is_file():
            raise FileNotFoundError(f"mixture manifest not found: {path}")
        self.cuts = list(CutSet.from_file(path))
        for c in self.cuts:
            if not c.supervisions or c.supervisions[0].text is None or "enroll_id" not in (c.custom or {}):
                raise ValueError(f"{path}: cut {c.id} lacks a transcript or custom enroll_id/enroll_path")
        self.source, self.cache = source, cache
        self._items: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.cuts)

    def __getitem__(self, i: int) -> tuple[str, np.ndarray, np.ndarray, str]:
        if i in self._items:
            return self._items[i]
        c = self.cuts[i]
        c = c.resample(SR) if c.sampling_rate != SR else c
        wav = c.load_audio()[0].astype(np.float32)
        emb = self.source.get(c.custom["enroll_id"], lambda: read_audio(c.custom["enroll_path"]))
        item = (c.id, wav, emb, c.supervisions[0].text)
        if self.cache:
            self._items[i] = item
        return item

    def speaker_dim(self) -> int:
        return int(self[0][2].shape[0])

    def target_pairs(self) -> list[list[int]]:
        """Indices of the cuts grouped by recording: each mixture with each of its two speakers as the
        target (``spkpeft tsasr simulate --both-targets``). Raises naming a recording that does not
        carry exactly two cuts of two different targets."""
        by_rec: dict[str, list[int]] = {}
        for i, c in enumerate(self.cuts):
            by_rec.setdefault(c.recording.id, []).append(i)
        for rec, idx in by_rec.items():
            targets = {self.cuts[i].supervisions[0].speaker for i in idx}
            if len(idx) != 2 or len(targets) != 2:
                raise ValueError(
                    f"data.pair_targets needs every mixture twice, once per speaker as the target; recording "
                    f"{rec} has {len(idx)} cut(s) of {len(targets)} target(s) (simulate with --both-targets)"
                )
        return list(by_rec.values())


def collate(model, items: list[tuple]) -> dict:  # noqa: ANN001
    """Items -> the batch dict of the module docstring (``model`` is the unwrapped TSWhisper)."""
    ids, wavs, embs, texts = zip(*items)
    dec, labels = model.decoder_inputs(texts)
    return {
        "features": model.features(wavs),
        "speaker": torch.from_numpy(np.stack(embs)),
        "decoder_input_ids": dec,
        "labels": labels,
        "texts": list(texts),
        "ids": list(ids),
    }
