"""Manifests are lhotse CutSets (``*.jsonl.gz``): one cut per utterance, cut id = utterance id, one
supervision carrying ``speaker`` (and ``text`` when known).

The loaders turn cuts into plain :class:`Utterance` records (path, offset, duration, speaker) so that
data-loader workers pickle small tuples, not lhotse objects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lhotse import CutSet, Recording, SupervisionSegment
from lhotse.cut import Cut

from spkpeft.data.audio import AudioError, read_audio

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One utterance of a manifest: where its audio lives and who speaks."""

    id: str
    path: str
    start: float
    duration: float
    speaker: str
    category: str = ""  # noise manifests: noise | music | speech

    def load(self, offset: float = 0.0, duration: float | None = None, speed: float = 1.0):
        """Mono float32 (S,) 16 kHz audio of ``duration`` s from ``offset`` s into the utterance."""
        if duration is None:
            duration = max(self.duration - offset, 0.0)
        return read_audio(self.path, self.start + offset, duration, speed=speed)


def load_manifest(path: str | Path) -> CutSet:
    """Read a CutSet file; a missing file or a file that is not a CutSet raises a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    try:
        cuts = CutSet.from_file(path)
    except Exception as e:
        raise ValueError(f"{path}: not a lhotse CutSet manifest ({type(e).__name__}: {e})") from None
    return cuts.to_eager()


def save_manifest(cuts: CutSet, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cuts.to_file(path)
    return path


def make_cut(
    audio_path: str | Path,
    cut_id: str,
    speaker: str | None = None,
    text: str | None = None,
    category: str | None = None,
) -> Cut:
    """A cut covering the whole file, id ``cut_id``, with one supervision (speaker, text)."""
    try:
        rec = Recording.from_file(str(audio_path), recording_id=cut_id)
    except Exception as e:
        raise AudioError(f"cannot read audio file {audio_path}: {e}") from None
    if rec.duration <= 0:
        raise AudioError(f"audio file is empty: {audio_path}")
    sup = SupervisionSegment(
        id=cut_id, recording_id=cut_id, start=0.0, duration=rec.duration, speaker=speaker, text=text
    )
    cut = rec.to_cut().with_id(cut_id)
    cut.supervisions = [sup]
    if category:
        cut.custom = {"category": category}
    return cut


def cut_speaker(cut: Cut) -> str | None:
    for sup in cut.supervisions:
        if sup.speaker:
            return sup.speaker
    return None


def cut_text(cut: Cut) -> str | None:
    for sup in cut.supervisions:
        if sup.text:
            return sup.text
    return None


def to_utterances(cuts: Iterable[Cut], need_speaker: bool = True, where: str = "") -> list[Utterance]:
    """Cuts -> :class:`Utterance` records. Only single-file audio sources are supported."""
    out = []
    for cut in cuts:
        spk = cut_speaker(cut)
        if need_speaker and not spk:
            raise ValueError(f"{where or 'manifest'}: cut {cut.id!r} has no supervision with a speaker")
        rec = cut.recording
        if rec is None or len(rec.sources) != 1 or rec.sources[0].type != "file":
            raise ValueError(
                f"{where or 'manifest'}: cut {cut.id!r} must point at one audio file "
                f"(got sources {[s.type for s in rec.sources] if rec else None})"
            )
        category = (cut.custom or {}).get("category", "") if hasattr(cut, "custom") else ""
        out.append(
            Utterance(
                cut.id, rec.sources[0].source, float(cut.start), float(cut.duration), spk or "", category
            )
        )
    return out


def load_utterances(path: str | Path, need_speaker: bool = True) -> list[Utterance]:
    return to_utterances(load_manifest(path), need_speaker=need_speaker, where=str(path))


def corpus_dir(root: str | Path) -> Path:
    """``root`` as a Path; FileNotFoundError naming it unless it is a directory (corpus preparers)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus directory not found: {root}")
    return root
