"""Corpora whose lhotse recipes already give the right ids: LibriSpeech, MUSAN, RIRS_NOISES.

Each wrapper turns the recipe's Recording/Supervision sets into our manifest form: one cut per
utterance (cut id = recording id), one supervision with ``speaker`` (and ``text``); noise and RIR cuts
carry ``custom["category"]`` (noise | music | speech | rir).
"""

from __future__ import annotations

import logging
from pathlib import Path

from lhotse import RecordingSet, SupervisionSet

from spkpeft.data.manifest import CutSet, corpus_dir, save_manifest

log = logging.getLogger(__name__)


def _to_cuts(
    recordings: RecordingSet, supervisions: SupervisionSet | None = None, category: str = ""
) -> CutSet:
    """One cut per recording, id = recording id, with that recording's supervisions (if any)."""
    by_rec: dict[str, list] = {}
    for s in supervisions or []:
        by_rec.setdefault(s.recording_id, []).append(s)
    cuts = []
    for rec in recordings:
        cut = rec.to_cut().with_id(rec.id)
        cut.supervisions = by_rec.get(rec.id, [])
        if category:
            cut.custom = {"category": category}
        cuts.append(cut)
    return CutSet.from_cuts(cuts)


def _librispeech_dir(root: Path) -> Path:
    return root / "LibriSpeech" if (root / "LibriSpeech").is_dir() else root


def prepare_librispeech(root: str | Path, out: str | Path, num_jobs: int = 1) -> dict[str, Path]:
    """LibriSpeech (ROOT or ROOT/LibriSpeech holding train-clean-100/, test-clean/, ...): one manifest
    per part (``librispeech_train-clean-100``), speaker = reader, text = transcript."""
    from lhotse.recipes import librispeech

    root = _librispeech_dir(corpus_dir(root))
    try:
        parts = librispeech.prepare_librispeech(root, num_jobs=num_jobs)
    except ValueError as e:
        raise ValueError(f"{root}: {e} (expected e.g. {root}/train-clean-100/SPK/CHAPTER/*.flac)") from None
    outputs = {}
    for part, m in sorted(parts.items()):
        if not len(m["recordings"]):
            raise ValueError(f"{root / part}: no utterances (each chapter needs its SPK-CHAPTER.trans.txt)")
        name = f"librispeech_{part}"
        outputs[name] = save_manifest(
            _to_cuts(m["recordings"], m["supervisions"]), Path(out) / f"{name}.jsonl.gz"
        )
    return outputs


def prepare_musan(root: str | Path, out: str | Path, num_jobs: int = 1) -> dict[str, Path]:
    """MUSAN (ROOT/{music,speech,noise}/...wav) -> ``musan.jsonl.gz`` with each cut's category, the
    noise manifest for training augmentation (``data.noise_manifest``)."""
    from lhotse.recipes import musan

    root = corpus_dir(root)
    root = root / "musan" if (root / "musan").is_dir() else root
    parts = [p for p in ("music", "speech", "noise") if (root / p).is_dir()]
    if not parts:
        raise ValueError(f"{root}: no music/, speech/ or noise/ folder (expected the MUSAN layout)")
    manifests = musan.prepare_musan(root, parts=parts)
    cuts = CutSet.from_cuts(c for p in parts for c in _to_cuts(manifests[p]["recordings"], category=p))
    if not len(cuts):
        raise ValueError(f"{root}: MUSAN folders hold no .wav files")
    log.info("MUSAN: %s", {p: len(manifests[p]["recordings"]) for p in parts})
    return {"musan": save_manifest(cuts, Path(out) / "musan.jsonl.gz")}


def prepare_rir(root: str | Path, out: str | Path, num_jobs: int = 1) -> dict[str, Path]:
    """RIRS_NOISES (simulated_rirs/{small,medium,large}room/..., real_rirs_isotropic_noises/*rir*.wav)
    -> ``rir.jsonl.gz`` (``data.rir_manifest``)."""
    from lhotse.recipes import rir_noise

    root = corpus_dir(root)
    root = root / "RIRS_NOISES" if (root / "RIRS_NOISES").is_dir() else root
    parts = [p for p in ("real_rir", "sim_rir") if (root / rir_noise.PARTS[p]).is_dir()]
    if not parts:
        raise ValueError(
            f"{root}: neither simulated_rirs/ nor real_rirs_isotropic_noises/ (RIRS_NOISES layout)"
        )
    manifests = rir_noise.prepare_rir_noise(root, parts=parts)
    cuts = CutSet.from_cuts(c for p in parts for c in _to_cuts(manifests[p]["recordings"], category="rir"))
    if not len(cuts):
        raise ValueError(f"{root}: no RIR .wav files found")
    log.info("RIRs: %s", {p: len(manifests[p]["recordings"]) for p in parts})
    return {"rir": save_manifest(cuts, Path(out) / "rir.jsonl.gz")}
