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


def speed_copies(
    table: dict[str, dict],
    speeds: Sequence[float],
    out: Path,
    split: str = "train",
    kinds: Sequence[str] = ("src", "enrol"),
) -> dict[str, dict]:
    """Speed-perturbed copies of the ``kinds`` stretches of ``split``, each speed a new pseudo-speaker
    (WeSpeaker's and LAP's speed-perturbation trick: a voice played 10 % faster has its pitch and formants
    10 % higher). Returns the new entries: id ``STEM@SPEED_KIND``, speaker ``SPEAKER@SPEED``, utt
    ``STEM@SPEED``, plus ``speed`` and ``copy_of`` (the original stretch id). A source copy keeps its
    original's ``text`` (the same words, played at another speed), so it needs no transcript of its own.
    Speed 1 is the original and is skipped. The copies are the whole stretch played faster or slower
    (``spkpeft.data.audio.to_mono_16k``), so a copy at speed 0.9 lasts 1 / 0.9 times as long."""
    from spkpeft.data.audio import read_audio, to_mono_16k

    bad = [v for v in speeds if not 0.5 <= v <= 2.0]
    if bad:
        raise ValueError(f"speed factors must lie in [0.5, 2], got {bad}")
    import soundfile as sf

    new: dict[str, dict] = {}
    out.mkdir(parents=True, exist_ok=True)
    for sid, r in table.items():
        if r["split"] != split or r["kind"] not in kinds or "copy_of" in r:
            continue
        wav = read_audio(r["path"], sample_rate=SR)
        for v in speeds:
            if v == 1.0:
                continue
            utt = f"{r['utt']}@{v:g}"
            cid = f"{utt}_{r['kind']}"
            sf.write(out / f"{cid}.wav", to_mono_16k(wav, SR, SR, v), SR, subtype="FLOAT")
            new[cid] = {**r, "speaker": f"{r['speaker']}@{v:g}", "utt": utt, "path": str(out / f"{cid}.wav"),
                        "speed": v, "copy_of": sid}  # fmt: skip
    return new


def kin_of(table: dict[str, dict]) -> dict[str, str]:
    """Speaker -> the person behind it: a speed copy's speaker (``SPK@SPEED``) -> ``SPK``; for
    :func:`~spkpeft.tsasr.simulate.simulate_mixtures`'s ``kin``, so that no mixture pairs a voice with a
    speed copy of itself (they would say the same words)."""
    return {r["speaker"]: table[r["copy_of"]]["speaker"] if "copy_of" in r else r["speaker"]
            for r in table.values()}  # fmt: skip


def transcribe_references(
    table: dict[str, dict],
    whisper: str = "whisper-tiny.en",
    window_seconds: int | None = None,
    batch: int = 16,
) -> None:
    """Add ``text`` to every source stretch: the frozen ``whisper``'s greedy transcript of the clean
    stretch (its full window unless ``window_seconds``). Empty transcripts stay empty (and are skipped by
    :func:`simulate_mixtures`). A speed copy (:func:`speed_copies`) takes its original's transcript."""
    from spkpeft.data.audio import read_audio
    from spkpeft.tsasr.model import ModelConfig, TSWhisper

    cfg = ModelConfig(whisper=whisper, method="frozen", window_seconds=window_seconds)
    model = TSWhisper.from_config(cfg, speaker_dim=1)
    ids = [i for i, r in table.items() if r["kind"] != "enrol" and "copy_of" not in r]
    for k in range(0, len(ids), batch):
        chunk = ids[k : k + batch]
        wavs = [read_audio(table[i]["path"], sample_rate=SR) for i in chunk]
        for i, text in zip(chunk, model.transcribe(wavs, None), strict=True):
            table[i]["text"] = text
        log.info("references: %d / %d", k + len(chunk), len(ids))
    for r in table.values():
        if "copy_of" in r and r["kind"] != "enrol":
            r["text"] = table[r["copy_of"]]["text"]


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
