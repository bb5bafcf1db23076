"""Data of the real-speech benchmark: manifests, the written-down speaker split, and the trial lists.

Sources (read in place, never copied): ``../shared/data/real-speech-train`` (126 LibriSpeech speakers with
one ~12 s recording each; RAVDESS actors 01-12 with 60 acted utterances each) and
``../shared/data/real-speech-mini`` (10 LibriSpeech test-other + 4 VCTK speakers, 10 utterances each).

The split (``benchmarks/real_speech/split.json``, committed; :func:`make_split` rebuilds it):

- train: 114 LibriSpeech speakers + RAVDESS actors 01-06. Each LibriSpeech recording (~12 s) is cut into
  3 s segments, so that the 6 actors' 360 utterances do not make up three quarters of every epoch;
- dev (model selection and early stopping): 12 LibriSpeech speakers (3 s segments, all pairs) + RAVDESS
  actors 07-08 (a seeded sample of pairs with as many target and non-target trials as the LibriSpeech
  part, so read and acted speech weigh the same in the dev EER);
- test: real-speech-mini (14 speakers, all pairs) and RAVDESS actors 09-12 (all pairs), never trained on.

Cut ids are ``<set>/<speaker>/<file stem>`` (``ls/1034/1034-121119-0049``, ``ravdess/Actor_09/03-01-...``,
``mini/vctk/p225/p225_001``); LibriSpeech segments add ``#0``, ``#1``, ...
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from spkpeft.data.manifest import CutSet, make_cut, save_manifest
from spkpeft.data.trials import Trial, read_trials, write_trials

HERE = Path(__file__).resolve().parent / "real_speech"
SPLIT_FILE = HERE / "split.json"
RAVDESS_SPLIT = {"train": range(1, 7), "dev": range(7, 9), "test": range(9, 13)}
DEV_LIBRISPEECH = 12
SEGMENT_SECONDS = 3.0
SPLIT_SEED = 0


def shared_data(root: Path | None = None) -> Path:
    """The shared data folder (``../shared/data`` of the repository); FileNotFoundError when absent."""
    root = root or Path(__file__).resolve().parents[2] / "shared" / "data"
    for sub in ("real-speech-train", "real-speech-mini"):
        if not (root / sub).is_dir():
            raise FileNotFoundError(f"{root / sub} not found: the real-speech benchmark reads it in place")
    return root


def make_split(data: Path) -> dict[str, list[str]]:
    """Speaker lists per part (deterministic: sorted folders, a seeded choice of the dev speakers)."""
    ls = sorted(p.name for p in (data / "real-speech-train" / "librispeech-train-clean-100").iterdir())
    dev_ls = sorted(np.random.default_rng(SPLIT_SEED).choice(ls, DEV_LIBRISPEECH, replace=False).tolist())
    actor = "Actor_{:02d}".format
    return {
        "train_librispeech": [s for s in ls if s not in dev_ls],
        "train_ravdess": [actor(i) for i in RAVDESS_SPLIT["train"]],
        "dev_librispeech": dev_ls,
        "dev_ravdess": [actor(i) for i in RAVDESS_SPLIT["dev"]],
        "test_ravdess": [actor(i) for i in RAVDESS_SPLIT["test"]],
    }


def load_split() -> dict[str, list[str]]:
    return json.loads(SPLIT_FILE.read_text())


def _cuts(folder: Path, speakers: list[str], prefix: str) -> list:
    out = []
    for spk in speakers:
        for f in sorted((folder / spk).rglob("*")):
            if f.suffix.lower() in (".flac", ".wav"):
                out.append(make_cut(f, f"{prefix}/{spk}/{f.stem}", speaker=f"{prefix}/{spk}"))
    if not out:
        raise FileNotFoundError(f"no audio for {speakers[:3]}... under {folder}")
    return out


def _segments(cuts: list, seconds: float = SEGMENT_SECONDS) -> list:
    """Each cut -> its consecutive ``seconds``-long segments (``#0``, ``#1``, ...; a shorter tail is
    dropped), so a one-recording speaker has several utterances."""
    out = []
    for c in cuts:
        for i in range(int(c.duration // seconds)):
            seg = c.truncate(offset=i * seconds, duration=seconds, preserve_id=False)
            out.append(seg.with_id(f"{c.id}#{i}"))
    return out


def build_manifests(data: Path, out: Path) -> dict[str, Path]:
    """Write ``train``, ``dev``, ``test_mini`` and ``test_ravdess`` CutSets under ``out``."""
    split = load_split()
    ls = data / "real-speech-train" / "librispeech-train-clean-100"
    rav = data / "real-speech-train" / "ravdess-actors-01-12"
    mini = data / "real-speech-mini"
    parts = {
        "train": _segments(_cuts(ls, split["train_librispeech"], "ls"))
        + _cuts(rav, split["train_ravdess"], "ravdess"),
        "dev": _segments(_cuts(ls, split["dev_librispeech"], "ls"))
        + _cuts(rav, split["dev_ravdess"], "ravdess"),
        "test_mini": _cuts(mini / "librispeech-test-other", _dirs(mini / "librispeech-test-other"), "mini/ls")
        + _cuts(mini / "vctk", _dirs(mini / "vctk"), "mini/vctk"),
        "test_ravdess": _cuts(rav, split["test_ravdess"], "ravdess"),
    }
    return {k: save_manifest(CutSet.from_cuts(v), out / f"{k}.jsonl.gz") for k, v in parts.items()}


def _dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def all_pairs(cuts: CutSet) -> list[Trial]:
    """Every unordered pair of distinct cuts, labelled by speaker (sorted, so the file is stable)."""
    items = sorted((c.id, c.supervisions[0].speaker) for c in cuts)
    return [Trial(a, b, int(sa == sb)) for (a, sa), (b, sb) in itertools.combinations(items, 2)]


def dev_trials(cuts: CutSet) -> list[Trial]:
    """All LibriSpeech pairs + a seeded sample of RAVDESS pairs with the same target / non-target counts."""
    from spkpeft.data.make_trials import make_trials

    ls = all_pairs(cuts.filter(lambda c: c.id.startswith("ls/")))
    rav: dict[str, list[str]] = {}
    for c in cuts.filter(lambda c: c.id.startswith("ravdess/")):
        rav.setdefault(c.supervisions[0].speaker, []).append(c.id)
    targets = sum(t.label for t in ls)
    return ls + make_trials(rav, targets, len(ls) - targets, seed=SPLIT_SEED)


def write_trial_lists(manifests: dict[str, Path], out: Path) -> dict[str, Path]:
    """``dev`` (:func:`dev_trials`), and all-pairs ``test_mini`` and ``test_ravdess`` (deterministic)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("dev", "test_mini", "test_ravdess"):
        paths[name] = out / f"{name}.txt"
        cuts = CutSet.from_file(manifests[name])
        write_trials(dev_trials(cuts) if name == "dev" else all_pairs(cuts), paths[name])
    return paths


def trial_counts(path: Path) -> dict[str, int]:
    trials = read_trials(path)
    targets = sum(t.label == 1 for t in trials)
    return {"targets": targets, "nontargets": len(trials) - targets}
