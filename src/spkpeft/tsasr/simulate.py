"""Libri2Mix-style two-speaker mixtures for target-speaker ASR, from any manifest with transcripts.

For each mixture: a target utterance, an interfering utterance of another speaker, and an enrolment
utterance of the target speaker (never the mixed one). The interferer is scaled to a target-to-interferer
ratio drawn from ``snr_db`` and offset so the two overlap by a fraction drawn from ``overlap`` of the
shorter one; which starts first is random. Everything is drawn from one seeded generator.

Output (under ``out_dir``): ``wav/<mix>.wav``, ``enroll/<utt>.wav`` and ``mixtures.jsonl.gz``, a lhotse
CutSet with one cut per mixture whose supervision is the target's (``speaker``, ``text``) and whose
``custom`` holds ``enroll_id``, ``enroll_path``, ``target_id``, ``interferer_id``, ``interferer_speaker``,
``interferer_text``, ``snr_db``, ``overlap`` and ``target_offset`` (seconds). With
``both_targets`` every mixture appears twice on one recording, once per speaker as the target.

For the real corpus, lhotse's LibriMix recipe (``lhotse download librimix`` /
``lhotse prepare librimix``, see docs/tsasr.md) provides the official Libri2Mix mixtures; pair each with
its LibriSpeech transcript and an enrolment utterance with the same ``custom`` fields.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import spkpeft.data  # noqa: F401  (lhotse import shim)
from spkpeft import progress
from spkpeft.data.config import SAMPLE_RATE as SR

log = logging.getLogger(__name__)


@dataclass
class SimulateConfig:
    mixtures: int = 1000
    overlap: tuple[float, float] = (0.5, 1.0)
    snr_db: tuple[float, float] = (-3.0, 3.0)
    seed: int = 0
    max_seconds: float | None = None  # drop mixtures longer than this (e.g. Whisper's window)
    # each mixture twice: once per speaker as the target (with that speaker's enrolment), both cuts on one
    # recording; tsasr training with data.pair_targets puts the two in one batch
    both_targets: bool = False


def _load(cut) -> np.ndarray:  # noqa: ANN001
    cut = cut.resample(SR) if cut.sampling_rate != SR else cut
    return cut.load_audio()[0].astype(np.float32)


def mix_pair(
    target: np.ndarray, interferer: np.ndarray, snr_db: float, overlap: float, target_first: bool
) -> tuple[np.ndarray, int]:
    """Mix two (S,) signals; returns (mixture (S_mix,), target offset in samples). The interferer
    starts at ``len(first) - overlap samples`` when the target is first, else at 0."""
    shorter = min(len(target), len(interferer))
    ov = int(round(overlap * shorter))
    first, second = (target, interferer) if target_first else (interferer, target)
    start2 = len(first) - ov
    out_len = max(len(first), start2 + len(second))
    pt, pi = np.mean(target**2) + 1e-10, np.mean(interferer**2) + 1e-10
    gain = np.sqrt(pt / (pi * 10 ** (snr_db / 10)))
    mix = np.zeros(out_len, dtype=np.float32)
    t_off = 0 if target_first else start2
    i_off = start2 if target_first else 0
    mix[t_off : t_off + len(target)] += target
    mix[i_off : i_off + len(interferer)] += gain * interferer
    peak = np.abs(mix).max()
    return (mix * (0.9 / peak) if peak > 0.9 else mix), t_off


def simulate_mixtures(cuts, out_dir: str | Path, cfg: SimulateConfig, enrolments=None, kin=None):  # noqa: ANN001, ANN201
    """Write ``cfg.mixtures`` mixtures from ``cuts`` (a lhotse CutSet with speaker + text) to ``out_dir``.

    Utterances without a transcript or speaker are skipped and counted in the log. Without
    ``enrolments`` the enrolment is another utterance of the target speaker (speakers with a single
    utterance are skipped); with ``enrolments`` (target cut id -> enrolment cut, e.g. another stretch of
    the same recording) it is that cut, and every speaker with a source cut can be a target.
    ``kin`` (speaker -> group, e.g. speed-perturbed copies of one person -> that person) keeps the
    interferer out of the target's group; without it any other speaker can interfere. Returns the
    mixture CutSet.
    """
    import soundfile as sf
    from lhotse import CutSet, MonoCut, Recording, SupervisionSegment

    out = Path(out_dir)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    (out / "enroll").mkdir(exist_ok=True)
    by_spk = _group(cuts, min_utterances=1 if enrolments is not None else 2)
    spks = sorted(by_spk)
    if len(spks) < 2:
        raise ValueError(
            f"need >= 2 speakers with transcribed utterances (and enrolments), found {len(spks)}"
        )
    if kin is not None:
        unknown = [s for s in spks if s not in kin]
        if unknown:
            raise KeyError(f"kin names no group for speaker(s) {unknown[:5]} ({len(unknown)} in all)")
        if len({kin[s] for s in spks}) < 2:
            raise ValueError(f"need speakers of >= 2 kin groups, found only {kin[spks[0]]!r}")
    others_of: dict[str, list[str]] = {}
    rng = np.random.default_rng(cfg.seed)
    mixed, dropped = [], 0
    for k in progress.track(range(cfg.mixtures), total=cfg.mixtures, desc="mixtures"):
        t_spk = spks[k % len(spks)]
        if enrolments is None:
            tgt, enr = rng.choice(len(by_spk[t_spk]), 2, replace=False)
            tgt, enr = by_spk[t_spk][tgt], by_spk[t_spk][enr]
        else:
            tgt = by_spk[t_spk][rng.integers(len(by_spk[t_spk]))]
            enr = _enrolment(enrolments, tgt)
        if kin is None:
            i_spk = spks[(spks.index(t_spk) + rng.integers(1, len(spks))) % len(spks)]
        else:
            if t_spk not in others_of:
                others_of[t_spk] = [s for s in spks if kin[s] != kin[t_spk]]
            i_spk = others_of[t_spk][rng.integers(len(others_of[t_spk]))]
        itf = by_spk[i_spk][rng.integers(len(by_spk[i_spk]))]
        snr, ov = float(rng.uniform(*cfg.snr_db)), float(rng.uniform(*cfg.overlap))
        target_first = bool(rng.integers(2))
        t_wav, i_wav = _load(tgt), _load(itf)
        mix, t_off = mix_pair(t_wav, i_wav, snr, ov, target_first)
        if cfg.max_seconds is not None and len(mix) > cfg.max_seconds * SR:
            dropped += 1
            continue
        mid = f"mix{k:06d}_{file_stem(tgt.id)}_{file_stem(itf.id)}"
        sf.write(out / "wav" / f"{mid}.wav", mix, SR, subtype="FLOAT")
        rec = Recording.from_file(out / "wav" / f"{mid}.wav", recording_id=mid)
        sides = [(tgt, itf, enr, t_spk, i_spk, snr, t_off)]
        if cfg.both_targets:  # the same recording, the interferer now the target
            i_enr = _enrolment(enrolments, itf) if enrolments is not None else _other(by_spk[i_spk], itf, rng)
            i_off = len(t_wav) - int(round(ov * min(len(t_wav), len(i_wav)))) if target_first else 0
            sides.append((itf, tgt, i_enr, i_spk, t_spk, -snr, i_off))
        for a, b, a_enr, a_spk, b_spk, a_snr, a_off in sides:
            cid = f"mix{k:06d}_{file_stem(a.id)}_{file_stem(b.id)}"
            enroll_path = out / "enroll" / f"{file_stem(a_enr.id)}.wav"
            if not enroll_path.exists():
                sf.write(enroll_path, _load(a_enr), SR, subtype="FLOAT")
            text = a.supervisions[0].text
            seg = SupervisionSegment(cid, mid, 0.0, rec.duration, speaker=a_spk, text=text, language="en")
            custom = dict(
                enroll_id=a_enr.id, enroll_path=str(enroll_path.resolve()), target_id=a.id,
                interferer_id=b.id, interferer_speaker=b_spk, interferer_text=b.supervisions[0].text,
                snr_db=a_snr, overlap=ov, target_offset=a_off / SR,
            )  # fmt: skip
            mixed.append(MonoCut(cid, 0.0, rec.duration, 0, recording=rec, supervisions=[seg], custom=custom))
    if dropped:
        log.info("dropped %d mixtures longer than %.2f s", dropped, cfg.max_seconds)
    cs = CutSet.from_cuts(mixed)
    cs.to_file(out / "mixtures.jsonl.gz")
    per = 2 if cfg.both_targets else 1
    log.info("wrote %d mixtures (%d cuts) of %d speakers to %s", len(cs) // per, len(cs), len(spks), out)
    return cs


def file_stem(utt_id: str) -> str:
    """An utterance id as one file name: ``/`` (VoxCeleb-style and synthetic-corpus ids) -> ``_``."""
    return utt_id.replace("/", "_").replace("\\", "_")


def _other(cuts: list, cut, rng: np.random.Generator):  # noqa: ANN001, ANN202
    """Another cut of the same speaker than ``cut`` (its enrolment when none is given)."""
    others = [c for c in cuts if c.id != cut.id]
    return others[rng.integers(len(others))]


def _enrolment(enrolments, tgt):  # noqa: ANN001, ANN202
    if tgt.id not in enrolments:
        raise KeyError(f"no enrolment cut for source cut {tgt.id!r} in the enrolments given")
    return enrolments[tgt.id]


def _group(cuts, min_utterances: int = 2) -> dict[str, list]:  # noqa: ANN001
    by_spk: dict[str, list] = defaultdict(list)
    no_label = 0
    for c in cuts:
        sups = c.supervisions
        if not sups or not sups[0].speaker or not sups[0].text:
            no_label += 1
            continue
        by_spk[sups[0].speaker].append(c)
    single = [s for s, v in by_spk.items() if len(v) < min_utterances]
    for s in single:
        del by_spk[s]
    if no_label or single:
        log.info(
            "skipped %d cuts without speaker/text and %d single-utterance speakers", no_label, len(single)
        )
    return dict(by_spk)
