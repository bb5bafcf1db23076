"""Whole-manifest operations: summary (utterances, speakers, hours), combine several manifests into one,
split one into train/test parts with disjoint speakers (``spkpeft data prepare / check / combine / split``).

Like lhotse's ``CutSet`` ``+`` and ``split``, but speaker-aware: a speaker verification test set must
not share speakers with the training set, and two corpora must not share cut ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spkpeft.data.manifest import CutSet, cut_speaker, load_manifest, save_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ManifestSummary:
    utterances: int
    speakers: int
    hours: float
    single_utterance_speakers: int  # speakers that cannot give a same-speaker trial

    def line(self) -> str:
        return f"{self.utterances} utterances, {self.speakers} speakers, {self.hours:.2f} h"


def summarize(cuts: CutSet) -> ManifestSummary:
    """Counts of a manifest (cuts without a speaker count as utterances only)."""
    per_speaker: dict[str, int] = {}
    seconds = 0.0
    n = 0
    for c in cuts:
        n += 1
        seconds += float(c.duration)
        spk = cut_speaker(c)
        if spk:
            per_speaker[spk] = per_speaker.get(spk, 0) + 1
    single = sum(1 for v in per_speaker.values() if v == 1)
    return ManifestSummary(n, len(per_speaker), seconds / 3600, single)


def combine_manifests(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Concatenate manifests into ``out``; a cut id present in two of them is an error naming both."""
    if len(paths) < 2:
        raise ValueError(f"combine needs at least two manifests, got {len(paths)}")
    owner: dict[str, Path] = {}
    parts = []
    for p in map(Path, paths):
        cuts = load_manifest(p)
        for cid in cuts.ids:
            if cid in owner:
                raise ValueError(
                    f"cut id {cid!r} is in both {owner[cid]} and {p}: ids must be unique across the combined "
                    "manifests (prepare each corpus from its own ROOT so its ids carry the corpus folder, or "
                    "use `data prepare folder` once on the parent folder with --speaker-level 2)"
                )
            owner[cid] = p
        parts.append(cuts)
    combined = parts[0]
    for cuts in parts[1:]:
        combined = combined + cuts
    return save_manifest(combined, out)


def split_by_speaker(
    path: str | Path, out_dir: str | Path, test_speakers: int, seed: int = 0
) -> dict[str, Path]:
    """``out_dir/train.jsonl.gz`` and ``out_dir/test.jsonl.gz``: ``test_speakers`` speakers drawn at
    random (seeded; sorted speaker list, so the draw does not depend on manifest order) go to test, all
    others to train. Every cut needs a speaker."""
    cuts = load_manifest(path)
    speakers = sorted({cut_speaker(c) or "" for c in cuts})
    if "" in speakers:
        missing = next(c.id for c in cuts if not cut_speaker(c))
        raise ValueError(f"{path}: cut {missing!r} has no speaker; split needs a speaker on every cut")
    if not 0 < test_speakers < len(speakers):
        raise ValueError(
            f"--test-speakers {test_speakers}: must lie in [1, {len(speakers) - 1}] ({path} has "
            f"{len(speakers)} speakers and train must keep at least one)"
        )
    rng = np.random.default_rng(seed)
    test = {speakers[i] for i in rng.choice(len(speakers), test_speakers, replace=False)}
    out_dir = Path(out_dir)
    parts = {
        "train": cuts.filter(lambda c: cut_speaker(c) not in test).to_eager(),
        "test": cuts.filter(lambda c: cut_speaker(c) in test).to_eager(),
    }
    log.info("%s: %d test speakers of %d (seed %d)", path, test_speakers, len(speakers), seed)
    return {name: save_manifest(c, out_dir / f"{name}.jsonl.gz") for name, c in parts.items()}
