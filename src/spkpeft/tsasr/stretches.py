"""Mixture material from recordings that carry no transcripts: cut each recording into stretches (one or
more *sources* to mix, then an *enrolment* stretch that is never mixed), take a frozen Whisper's transcript
of each clean source as its reference, and hand the sources with their enrolments to
:func:`~spkpeft.tsasr.simulate.simulate_mixtures`.

A stretch table maps a stretch id (``<recording stem>_<kind>``, kind ``src``, ``src2``, ... or ``enrol``)
to ``{"speaker", "kind", "split", "utt", "path"[, "text"]}``; it is plain JSON so a benchmark can keep it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import spkpeft.data  # noqa: F401  (lhotse import shim)
from spkpeft.data.config import SAMPLE_RATE as SR

log = logging.getLogger(__name__)


@dataclass
class StretchConfig:
    """Seconds per source stretch, the gap after each, how many sources, and the enrolment (at most
    ``enrol_seconds``, at least ``min_enrol_seconds`` or the recording is skipped)."""

    src_seconds: float = 3.5
    gap_seconds: float = 0.5
    sources: int = 1
    enrol_seconds: float = 4.0
    min_enrol_seconds: float = 2.0


def cut_stretches(wav: np.ndarray, cfg: StretchConfig) -> dict[str, np.ndarray] | None:
    """(S,) 16 kHz recording -> ``{"src": (n,), "src2": (n,), ..., "enrol": (m,)}``, or None when it is
    too short for ``cfg.sources`` full sources and the minimum enrolment."""
    n, gap = int(cfg.src_seconds * SR), int(cfg.gap_seconds * SR)
    parts, start = {}, 0
    for k in range(cfg.sources):
        parts["src" if k == 0 else f"src{k + 1}"] = wav[start : start + n]
        start += n + gap
    enrol = wav[start : start + int(cfg.enrol_seconds * SR)]
    if any(len(p) < n for p in parts.values()) or len(enrol) < cfg.min_enrol_seconds * SR:
        return None
    return {**parts, "enrol": enrol}


def write_stretches(
    recordings: Iterable[tuple[str, str, Path]], out: Path, cfg: StretchConfig
) -> dict[str, dict]:
    """``(split, speaker, audio file)`` triples (any format and rate: read as 16 kHz mono) -> stretch wavs
    under ``out`` and the stretch table."""
    import soundfile as sf

    from spkpeft.data.audio import read_audio

    table: dict[str, dict] = {}
    out.mkdir(parents=True, exist_ok=True)
    for split, speaker, f in recordings:
        parts = cut_stretches(read_audio(f, sample_rate=SR), cfg)
        if parts is None:
            log.info("skipped %s: shorter than %d source(s) + enrolment", f, cfg.sources)
            continue
        for kind, x in parts.items():
            sid = f"{f.stem}_{kind}"
            sf.write(out / f"{sid}.wav", x, SR, subtype="FLOAT")
            table[sid] = dict(
                speaker=speaker, kind=kind, split=split, utt=f.stem, path=str(out / f"{sid}.wav")
            )
    return table


def transcribe_references(
    table: dict[str, dict],
    whisper: str = "whisper-tiny.en",
    window_seconds: int | None = None,
    batch: int = 16,
) -> None:
    """Add ``text`` to every source stretch: the frozen ``whisper``'s greedy transcript of the clean
    stretch (its full window unless ``window_seconds``). Empty transcripts stay empty (and are skipped by
    :func:`simulate_mixtures`)."""
    from spkpeft.data.audio import read_audio
    from spkpeft.tsasr.model import ModelConfig, TSWhisper

    cfg = ModelConfig(whisper=whisper, method="frozen", window_seconds=window_seconds)
    model = TSWhisper.from_config(cfg, speaker_dim=1)
    ids = [i for i, r in table.items() if r["kind"] != "enrol"]
    for k in range(0, len(ids), batch):
        chunk = ids[k : k + batch]
        wavs = [read_audio(table[i]["path"], sample_rate=SR) for i in chunk]
        for i, text in zip(chunk, model.transcribe(wavs, None), strict=True):
            table[i]["text"] = text
        log.info("references: %d / %d", k + len(chunk), len(ids))


def stretch_cut(table: dict[str, dict], sid: str):  # noqa: ANN201
    """One stretch as a lhotse MonoCut (supervision: speaker and, for sources, the reference text)."""
    from lhotse import MonoCut, Recording, SupervisionSegment

    r = table[sid]
    rec = Recording.from_file(r["path"], recording_id=sid)
    sup = SupervisionSegment(sid, sid, 0.0, rec.duration, speaker=r["speaker"], text=r.get("text"))
    return MonoCut(sid, 0.0, rec.duration, 0, recording=rec, supervisions=[sup])


def sources_and_enrolments(table: dict[str, dict], split: str, kind: str = "src") -> tuple:
    """(CutSet of the ``kind`` stretches of ``split``, {source id: enrolment cut of the same recording})."""
    from lhotse import CutSet

    src = [stretch_cut(table, i) for i, r in table.items() if r["split"] == split and r["kind"] == kind]
    enrol = {c.id: stretch_cut(table, f"{table[c.id]['utt']}_enrol") for c in src}
    return CutSet.from_cuts(src), enrol


def folder_recordings(split: str, folder: Path, pattern: str = "*/*.flac") -> Sequence[tuple[str, str, Path]]:
    """``folder/SPEAKER/*.flac`` -> ``(split, SPEAKER, file)`` triples, sorted."""
    return [(split, f.parent.name, f) for f in sorted(folder.glob(pattern))]
