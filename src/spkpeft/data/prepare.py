"""Corpus preparation: a corpus as distributed on disk -> CutSet manifests (+ trial lists).

``folder``, ``voxceleb`` and ``cnceleb`` are scanned here because their cut ids must match the
official trial lists (lhotse's VoxCeleb recipe renames utterances ``id10270-5r0dWxy17C8-00001`` and
needs the metadata CSVs; lhotse has no CN-Celeb recipe). ``librispeech``, ``musan`` and ``rir`` use
lhotse's recipes (:mod:`spkpeft.data.prepare_lhotse`). :data:`spkpeft.data.corpora.CORPORA` names them
all and dispatches (``spkpeft.data.corpora.prepare``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from spkpeft import progress
from spkpeft.data.audio import AudioError
from spkpeft.data.manifest import Cut, CutSet, corpus_dir, make_cut, save_manifest
from spkpeft.data.trials import check_trials, read_cnceleb_trials, read_trials, write_trials

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64", ".sph")
VOX_SPEAKER = re.compile(r"^id\d{5}$")
VOX1_TEST = {f"id{n}" for n in range(10270, 10310)}  # the 40 VoxCeleb1 test speakers
VOX_TRIALS = {  # official file name -> our name
    "veri_test.txt": "vox1_O_original.txt",
    "veri_test2.txt": "vox1_O_cleaned.txt",
    "list_test_all.txt": "vox1_E_original.txt",
    "list_test_all2.txt": "vox1_E_cleaned.txt",
    "list_test_hard.txt": "vox1_H_original.txt",
    "list_test_hard2.txt": "vox1_H_cleaned.txt",
}
M4A_HELP = "convert VoxCeleb2's m4a to wav first (docs/data.md, 'VoxCeleb2 m4a'), then prepare again"

Item = tuple[Path, str, str]  # (audio path, cut id, speaker)


def _one_cut(item: Item) -> Cut | str:
    """A whole-file cut, or the error message when the file cannot be read."""
    path, cut_id, speaker = item
    try:
        return make_cut(path, cut_id, speaker=speaker)
    except AudioError as e:
        return str(e)


def cuts_from_files(items: Sequence[Item], num_jobs: int = 1, where: str = "") -> CutSet:
    """One whole-file cut per item; unreadable files are skipped and counted in the log."""
    if not items:
        raise ValueError(f"{where or 'corpus'}: no audio files found ({', '.join(AUDIO_EXTENSIONS)})")
    if num_jobs > 1:
        with ProcessPoolExecutor(num_jobs) as ex:
            results = list(progress.track(ex.map(_one_cut, items, chunksize=64), len(items), "scan"))
    else:
        results = [_one_cut(it) for it in progress.track(items, len(items), "scan")]
    bad = [r for r in results if isinstance(r, str)]
    if bad:
        log.warning("%s: skipped %d unreadable files, first: %s", where or "corpus", len(bad), bad[:3])
    good = [r for r in results if not isinstance(r, str)]
    if not good:
        raise ValueError(f"{where or 'corpus'}: none of {len(items)} audio files could be read: {bad[:3]}")
    return CutSet.from_cuts(good)


def audio_files(root: Path, extensions: Iterable[str] = AUDIO_EXTENSIONS) -> list[Path]:
    """Audio files under ``root``, sorted; symlinked folders and files are followed (each real folder
    is visited once, so a symlink loop ends). Paths keep the names under ``root`` (not the link targets)."""
    exts = {e.lower() for e in extensions}
    found, seen = [], set()
    for d, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(d)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        found += [Path(d) / f for f in files if Path(f).suffix.lower() in exts and (Path(d) / f).is_file()]
    return sorted(found)


def _no_audio_hint(root: Path) -> str:
    """What lies under ``root`` instead of audio (for the 'no audio files found' error)."""
    others: dict[str, int] = {}
    for _, _, files in os.walk(root, followlinks=True):
        for f in files:
            others[Path(f).suffix.lower() or "(none)"] = others.get(Path(f).suffix.lower() or "(none)", 0) + 1
    if not others:
        return f"{root} holds no files at all"
    top = ", ".join(f"{n} {ext}" for ext, n in sorted(others.items(), key=lambda kv: -kv[1])[:5])
    return f"files found instead, by extension: {top}"


def prepare_folder(
    root: str | Path, out: str | Path, num_jobs: int = 1, name: str = "folder", speaker_level: int = 1
) -> dict[str, Path]:
    """ROOT/.../SPEAKER/**/*.{wav,flac,...} -> ``OUT/<name>.jsonl.gz``; cut id = path relative to ROOT.

    The speaker is the first ``speaker_level`` folder levels under ROOT joined with "/": level 1 for
    ``ROOT/SPEAKER/*.wav``, level 2 for ``ROOT/CORPUS/SPEAKER/*.flac`` (speaker ``CORPUS/SPEAKER``, so
    equal speaker names in two corpora stay apart). Files less deep than that are skipped (logged)."""
    root = corpus_dir(root)
    if speaker_level < 1:
        raise ValueError(f"speaker_level={speaker_level}: must be >= 1 (1 = the first folder under ROOT)")
    files = audio_files(root)
    if not files:
        raise ValueError(
            f"{root}: no audio files found ({', '.join(AUDIO_EXTENSIONS)}); {_no_audio_hint(root)}"
        )
    rel = [(p, p.relative_to(root).parts) for p in files]
    items = [
        (p, "/".join(parts), "/".join(parts[:speaker_level]))
        for p, parts in rel
        if len(parts) > speaker_level
    ]
    if len(items) < len(files):
        log.warning("%s: skipped %d audio files less than %d folder level(s) deep (no speaker folder)",
                    root, len(files) - len(items), speaker_level)  # fmt: skip
    if not items:
        raise ValueError(
            f"{root}: no audio file lies {speaker_level} folder level(s) below ROOT, so none has a speaker "
            f"folder; lower --speaker-level (files are e.g. {files[0].relative_to(root).as_posix()})"
        )
    _warn_few_speakers(root, [parts for _, parts in rel], speaker_level)
    cuts = cuts_from_files(items, num_jobs, str(root))
    return {name: save_manifest(cuts, Path(out) / f"{name}.jsonl.gz")}


def _warn_few_speakers(root: Path, parts: list[tuple[str, ...]], level: int) -> None:
    """Warn when the chosen level has very few speakers but the next one down has many more folders."""
    here = {p[:level] for p in parts if len(p) > level}
    deeper = {p[: level + 1] for p in parts if len(p) > level + 1}
    if len(here) < 5 and len(deeper) >= 2 * len(here):
        names = ", ".join(sorted("/".join(h) for h in here))
        log.warning(
            "%s: only %d speaker(s) at --speaker-level %d (%s) but %d folders one level deeper: if those "
            "are the speakers, prepare again with --speaker-level %d",
            root, len(here), level, names, len(deeper), level + 1,
        )  # fmt: skip


def _vox_speaker_roots(root: Path) -> list[Path]:
    """Folders whose children are VoxCeleb speaker folders (idNNNNN): wav/, aac/, dev/aac/, ..."""
    found = []
    for d in [root, *sorted(p for p in root.rglob("*") if p.is_dir() and not VOX_SPEAKER.match(p.name))]:
        if any(VOX_SPEAKER.match(c.name) for c in d.iterdir() if c.is_dir()):
            if not any(d.is_relative_to(f) for f in found):
                found.append(d)
    return found


def _vox_split(rel_root: str, speaker: str) -> str:
    """vox1_dev | vox1_test (the 40 test speakers) | vox2_dev | vox2_test (a 'test' folder in the path)."""
    if speaker.startswith("id1"):
        return "vox1_test" if speaker in VOX1_TEST else "vox1_dev"
    return "vox2_test" if "test" in rel_root.lower() else "vox2_dev"


def prepare_voxceleb(root: str | Path, out: str | Path, num_jobs: int = 1) -> dict[str, Path]:
    """VoxCeleb1 dev/test and VoxCeleb2 dev (converted to wav/flac) -> ``vox1_dev``, ``vox1_test``,
    ``vox1_all`` (for Vox1-E/H), ``vox2_dev`` manifests; official trial lists found under ROOT are copied
    to ``OUT/trials/`` and checked. Cut ids are ``id10270/5r0dWxy17C8/00001.wav``."""
    root, out = corpus_dir(root), Path(out)
    splits: dict[str, list[Item]] = {}
    m4a = 0
    for sr in _vox_speaker_roots(root):
        for spk_dir in sorted(c for c in sr.iterdir() if c.is_dir() and VOX_SPEAKER.match(c.name)):
            m4a += sum(1 for _ in spk_dir.rglob("*.m4a"))
            for p in audio_files(spk_dir):
                splits.setdefault(_vox_split(sr.relative_to(root).as_posix(), spk_dir.name), []).append(
                    (p, p.relative_to(sr).as_posix(), spk_dir.name)
                )
    if not splits:
        hint = f"; found {m4a} m4a files: {M4A_HELP}" if m4a else ""
        raise ValueError(f"{root}: no VoxCeleb audio (expected .../wav/idNNNNN/VIDEO/NNNNN.wav){hint}")
    if m4a:
        log.warning("%s: ignored %d m4a files (%s)", root, m4a, M4A_HELP)
    outputs = {}
    cuts = {}
    for split, items in sorted(splits.items()):
        cuts[split] = cuts_from_files(items, num_jobs, f"{root} ({split})")
        outputs[split] = save_manifest(cuts[split], out / f"{split}.jsonl.gz")
    if "vox1_dev" in cuts and "vox1_test" in cuts:
        outputs["vox1_all"] = save_manifest(cuts["vox1_dev"] + cuts["vox1_test"], out / "vox1_all.jsonl.gz")
    ids = {c.id for cs in cuts.values() for c in cs}
    outputs.update(_copy_vox_trials(root, out / "trials", ids))
    return outputs


def _copy_vox_trials(root: Path, out: Path, ids: set[str]) -> dict[str, Path]:
    """Copy official VoxCeleb1 trial lists found under ``root``; warn if they name absent utterances."""
    outputs = {}
    for official, ours in VOX_TRIALS.items():
        src = next(iter(sorted(root.rglob(official))), None)
        if src is None:
            continue
        trials = read_trials(src)
        try:
            check_trials(trials, ids, str(src))
        except ValueError as e:
            log.warning("%s (evaluation on it will fail until the audio is prepared)", e)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out / ours)
        outputs[ours.removesuffix(".txt")] = out / ours
    return outputs


def _cnceleb_train(base: Path, spk_list: Path, where: str) -> list[Item]:
    speakers = (
        spk_list.read_text().split()
        if spk_list.is_file()
        else sorted(p.name for p in (base / "data").iterdir())
    )
    items = []
    for spk in speakers:
        for p in audio_files(base / "data" / spk):
            items.append((p, p.relative_to(base / "data").with_suffix("").as_posix(), spk))
    if not items:
        raise ValueError(f"{where}: no audio under {base / 'data'} for the speakers of {spk_list}")
    return items


def prepare_cnceleb(root: str | Path, out: str | Path, num_jobs: int = 1) -> dict[str, Path]:
    """CN-Celeb1 (``CN-Celeb_flac``: data/, dev/dev.lst, eval/{enroll,test,lists}) and/or CN-Celeb2
    (``CN-Celeb2_flac``: data/, spk.lst) -> ``cnceleb1_dev``, ``cnceleb2``, ``cnceleb_train`` (both),
    ``cnceleb1_eval`` (enroll + test, ids as in trials.lst) and ``trials/cnceleb1.txt``."""
    root, out = corpus_dir(root), Path(out)
    cn1 = next(
        (d for d in (root / "CN-Celeb_flac", root) if (d / "eval").is_dir() or (d / "dev").is_dir()), None
    )
    cn2 = next((d for d in (root / "CN-Celeb2_flac", root) if (d / "spk.lst").is_file()), None)
    if cn1 is None and cn2 is None:
        raise ValueError(
            f"{root}: neither CN-Celeb_flac (data/, dev/, eval/) nor CN-Celeb2_flac (data/, spk.lst)"
        )
    outputs, train = {}, []
    if cn1 is not None:
        cuts = cuts_from_files(_cnceleb_train(cn1, cn1 / "dev" / "dev.lst", str(cn1)), num_jobs, str(cn1))
        outputs["cnceleb1_dev"] = save_manifest(cuts, out / "cnceleb1_dev.jsonl.gz")
        train.append(cuts)
        outputs.update(_cnceleb_eval(cn1, out, num_jobs))
    if cn2 is not None:
        cuts = cuts_from_files(_cnceleb_train(cn2, cn2 / "spk.lst", str(cn2)), num_jobs, str(cn2))
        outputs["cnceleb2"] = save_manifest(cuts, out / "cnceleb2.jsonl.gz")
        train.append(cuts)
    if len(train) == 2:
        outputs["cnceleb_train"] = save_manifest(train[0] + train[1], out / "cnceleb_train.jsonl.gz")
    return outputs


def _cnceleb_eval(cn1: Path, out: Path, num_jobs: int) -> dict[str, Path]:
    if not (cn1 / "eval").is_dir():
        return {}
    items = [
        (p, p.stem, p.stem.split("-")[0])
        for part in ("enroll", "test")
        for p in audio_files(cn1 / "eval" / part)
    ]
    cuts = cuts_from_files(items, num_jobs, str(cn1 / "eval"))
    outputs = {"cnceleb1_eval": save_manifest(cuts, out / "cnceleb1_eval.jsonl.gz")}
    lst = cn1 / "eval" / "lists" / "trials.lst"
    if lst.is_file():
        trials = read_cnceleb_trials(lst)
        check_trials(trials, {c.id for c in cuts}, str(lst))
        write_trials(trials, out / "trials" / "cnceleb1.txt")
        outputs["cnceleb1_trials"] = out / "trials" / "cnceleb1.txt"
    return outputs
