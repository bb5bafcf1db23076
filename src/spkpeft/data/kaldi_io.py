"""Kaldi data directories (``wav.scp``, ``utt2spk``, optional ``segments``/``text``) in and out, through
lhotse's ``load_kaldi_data_dir`` / ``export_to_kaldi``.

Import: with ``segments`` each segment is a cut (id = segment id); without, each ``wav.scp`` entry is
an utterance (id = its key) whose speaker comes from ``utt2spk``.
"""

from __future__ import annotations

from pathlib import Path

from lhotse import RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.cut import MonoCut
from lhotse.kaldi import export_to_kaldi, load_kaldi_data_dir, load_kaldi_text_mapping
from lhotse.utils import fastcopy

from spkpeft.data.audio import audio_info
from spkpeft.data.manifest import CutSet, save_manifest


def _sniff_rate(data_dir: Path) -> int:
    """The sampling rate of the first file in wav.scp (commands ending in '|' cannot be sniffed)."""
    wav_scp = data_dir / "wav.scp"
    if not wav_scp.is_file():
        raise FileNotFoundError(f"{data_dir}: not a Kaldi data directory (no wav.scp)")
    for line in wav_scp.read_text().splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2:
            if parts[1].rstrip().endswith("|"):
                raise ValueError(f"{wav_scp}: piped commands need an explicit --sample-rate")
            return audio_info(parts[1].strip())[1]
    raise ValueError(f"{wav_scp}: empty")


def import_kaldi(
    data_dir: str | Path, out: str | Path | None = None, sample_rate: int | None = None
) -> CutSet:
    """Kaldi data dir -> CutSet (written to ``out`` when given)."""
    data_dir = Path(data_dir)
    rate = sample_rate or _sniff_rate(data_dir)
    recordings, supervisions, _ = load_kaldi_data_dir(data_dir, sampling_rate=rate)
    if supervisions is None:
        spk = load_kaldi_text_mapping(data_dir / "utt2spk")
        text = load_kaldi_text_mapping(data_dir / "text")
        missing = [r.id for r in recordings if r.id not in spk]
        if missing:
            raise ValueError(
                f"{data_dir / 'utt2spk'}: no speaker for {len(missing)} utterances, first {missing[:5]}"
            )
        supervisions = [
            SupervisionSegment(r.id, r.id, 0.0, r.duration, speaker=spk[r.id], text=text.get(r.id))
            for r in recordings
        ]
    cuts = []
    for sup in supervisions:
        if not sup.text:  # an empty Kaldi transcript means "unknown"
            sup = fastcopy(sup, text=None)
        rec = recordings[sup.recording_id]
        cuts.append(
            MonoCut(
                id=sup.id,
                start=sup.start,
                duration=sup.duration,
                channel=0,
                recording=rec,
                supervisions=[fastcopy(sup, start=0.0)],
            )
        )
    cutset = CutSet.from_cuts(cuts)
    if out is not None:
        save_manifest(cutset, out)
    return cutset


def export_kaldi(cuts: CutSet, out_dir: str | Path) -> Path:
    """CutSet -> Kaldi data dir (wav.scp, segments, utt2spk, text, ...). Segment ids = cut ids."""
    recs = {}
    sups = []
    for cut in cuts:
        if not cut.supervisions:
            raise ValueError(f"cut {cut.id!r} has no supervision: Kaldi's utt2spk needs a speaker")
        recs[cut.recording.id] = cut.recording
        s = cut.supervisions[0]
        sups.append(fastcopy(s, id=cut.id, recording_id=cut.recording.id, start=cut.start + s.start))

    export_to_kaldi(RecordingSet.from_recordings(recs.values()), SupervisionSet.from_segments(sups), out_dir)
    if any(s.text is None for s in sups):  # lhotse writes "None"; write an empty transcript instead
        lines = [f"{s.id} {s.text}" if s.text is not None else s.id for s in sorted(sups, key=lambda s: s.id)]
        (Path(out_dir) / "text").write_text("\n".join(lines) + "\n")
    return Path(out_dir)
