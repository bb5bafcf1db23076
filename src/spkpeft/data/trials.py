"""Trial lists: ``label enroll test`` lines (VoxCeleb style); ids are manifest (cut) ids.

Reading (VoxCeleb, CN-Celeb, Kaldi styles), writing, checking against a manifest; balanced trial lists for
any manifest are made by :mod:`spkpeft.data.make_trials`.

One format for reading and writing: whitespace-separated fields; inside an id, whitespace and ``%`` are
written percent-escaped (``my file`` -> ``my%20file``, ``%`` -> ``%25``) and unescaped on reading, so any
manifest id survives a round trip. A list is either all labelled or all unlabelled: a mixed file is an
error naming the first line of the rarer kind (scoring it as unlabelled would drop EER and minDCF).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote


@dataclass(frozen=True)
class Trial:
    enroll: str
    test: str
    label: int | None  # 1 target, 0 non-target, None unknown (scoring only)


TARGET_WORDS = {"1": 1, "target": 1, "tgt": 1, "0": 0, "nontarget": 0, "nontgt": 0, "imp": 0}


def read_trials(path: str | Path) -> list[Trial]:
    """Read a trial list: ``label enroll test`` (VoxCeleb: Vox1-O/E/H, original and cleaned),
    ``enroll test label`` (CN-Celeb ``trials.lst``, Kaldi ``target``/``nontarget``) or ``enroll test``
    (unlabelled). Malformed lines raise ValueError naming the file and line number."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trial list not found: {path}")
    out: list[Trial] = []
    lines: dict[bool, list[int]] = {True: [], False: []}  # labelled? -> line numbers
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) == 3:
            if parts[0] in {"0", "1"}:
                out.append(Trial(_unescape(parts[1]), _unescape(parts[2]), int(parts[0])))
            elif parts[2].lower() in TARGET_WORDS:
                out.append(Trial(_unescape(parts[0]), _unescape(parts[1]), TARGET_WORDS[parts[2].lower()]))
            else:
                raise ValueError(
                    f"{path}:{n}: expected 'label enroll test' (label 0/1) or 'enroll test label' "
                    f"(label 0/1/target/nontarget), got {line!r}"
                )
        elif len(parts) == 2:
            out.append(Trial(_unescape(parts[0]), _unescape(parts[1]), None))
        else:
            raise ValueError(f"{path}:{n}: expected 'label enroll test' or 'enroll test', got {line!r}")
        lines[out[-1].label is not None].append(n)
    if not out:
        raise ValueError(f"{path}: no trials")
    if lines[True] and lines[False]:
        odd = lines[False] if len(lines[False]) <= len(lines[True]) else lines[True]
        kind = "has no label" if odd is lines[False] else "has a label"
        raise ValueError(
            f"{path}:{odd[0]}: this trial {kind}, unlike {len(out) - len(odd)} other lines; a trial list is "
            f"all labelled ('label enroll test') or all unlabelled ('enroll test'). Lines of this kind: "
            f"{odd[:5]}"
        )
    return out


_ESCAPE = re.compile(r"[%\s]")


def escape_id(utt_id: str) -> str:
    """An id as one whitespace-free field: whitespace and ``%`` percent-escaped (UTF-8 bytes)."""
    return _ESCAPE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), utt_id)


def _unescape(field: str) -> str:
    return unquote(field) if "%" in field else field


def cnceleb_id(name: str) -> str:
    """A CN-Celeb trial entry -> manifest id: ``test/id00800-singing-01-001.wav`` ->
    ``id00800-singing-01-001``; ``id00800-enroll`` stays (the ids ``prepare cnceleb`` writes)."""
    stem = name.rsplit("/", 1)[-1]
    for ext in (".wav", ".flac"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    return stem


def read_cnceleb_trials(path: str | Path) -> list[Trial]:
    """CN-Celeb ``eval/lists/trials.lst`` (``enroll test label``) with ids mapped by :func:`cnceleb_id`."""
    return [Trial(cnceleb_id(t.enroll), cnceleb_id(t.test), t.label) for t in read_trials(path)]


def check_trials(trials: Sequence[Trial], ids: Iterable[str], where: str = "trial list") -> None:
    """Raise ValueError if a trial names an utterance not in ``ids``, listing the first missing ones."""
    known = set(ids)
    missing: list[str] = []
    seen: set[str] = set()
    for t in trials:
        for u in (t.enroll, t.test):
            if u not in known and u not in seen:
                seen.add(u)
                missing.append(u)
    if missing:
        raise ValueError(
            f"{where}: {len(missing)} utterance(s) named in the trials are not in the manifest "
            f"({len(known)} utterances); first missing: {missing[:5]}"
            f"{_id_hint(missing, known, len({u for t in trials for u in (t.enroll, t.test)}))}"
        )


def _id_hint(missing: list[str], known: set[str], n_named: int) -> str:
    """When trial ids and manifest ids follow different conventions: show both, and the prefix that
    differs when one side's ids end with the other's."""
    if len(missing) < n_named:  # some ids match: a partial test set, not a naming problem
        return ""
    examples = sorted(known)[:3]
    hint = (
        f". No trial id matches: manifest ids look like {examples}, trial ids like {missing[:3]}. Trial "
        "entries must equal the manifest's cut ids, which `data prepare folder` makes the audio path "
        "relative to the prepared ROOT (e.g. SPEAKER/utt.wav)"
    )
    for m in missing[:50]:
        for k in known:
            if m.endswith("/" + k):
                return hint + f"; the trial ids carry an extra prefix {m[: -len(k)]!r}"
            if k.endswith("/" + m):
                return hint + f"; the manifest ids carry an extra prefix {k[: -len(m)]!r}"
    return hint


def write_trials(trials: list[Trial], path: str | Path) -> None:
    """Write ``label enroll test`` (or ``enroll test``) lines that :func:`read_trials` reads back exactly."""
    lines = []
    for t in trials:
        pair = f"{escape_id(t.enroll)} {escape_id(t.test)}"
        lines.append(f"{t.label} {pair}" if t.label is not None else pair)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
