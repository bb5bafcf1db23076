"""The demo's data from the user's own recordings (``spkpeft demo --audio DIR``).

``DIR`` holds one sub-folder per speaker (``DIR/SPEAKER/**/*.wav|flac|...``). It is prepared like
``spkpeft data prepare folder`` (cut id = path relative to ``DIR``), split by speaker into adaptation and
test speakers (disjoint, seeded, like ``spkpeft data split``), and the test speakers' utterances give the
trial list. Too little data is refused with a message that says what is needed.
"""

from __future__ import annotations

import logging
from math import comb
from pathlib import Path

from spkpeft.data.make_trials import make_trials
from spkpeft.data.manifest import cut_speaker, load_manifest
from spkpeft.data.trials import write_trials

log = logging.getLogger(__name__)

MIN_SPEAKERS = 6  # at least 4 to adapt on and 2 to test
MIN_TEST_UTTERANCES = 2  # a test speaker needs a same-speaker (target) pair


def held_out_speakers(speakers: int) -> int:
    """How many of ``speakers`` are held out for testing: a quarter, at least 2."""
    return max(2, speakers // 4)


def write_demo_trials(by_speaker: dict[str, list[str]], targets: int, nontargets: int, seed: int, path: Path):
    """Write a trial list of at most ``targets`` / ``nontargets`` pairs (fewer when the speakers cannot
    supply that many distinct pairs; logged)."""
    sizes = [len(u) for u in by_speaker.values()]
    max_t = sum(comb(n, 2) for n in sizes)
    max_n = (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2
    n_t, n_n = min(targets, max_t), min(nontargets, max_n)
    if (n_t, n_n) != (targets, nontargets):
        log.info("trials: %d target and %d non-target (all the test speakers allow)", n_t, n_n)
    write_trials(make_trials(by_speaker, n_t, n_n, seed), path)


def _by_speaker(manifest: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cut in load_manifest(manifest):
        out.setdefault(cut_speaker(cut) or "", []).append(cut.id)
    return out


def prepare_user_audio(audio: str | Path, data: Path, targets: int, nontargets: int, seed: int) -> dict:
    """``audio`` -> ``data/{adapt,test}.jsonl.gz`` and ``data/trials.txt`` (skipped when the trial list
    exists). Returns the paths and the speaker counts. Raises ValueError for fewer than
    :data:`MIN_SPEAKERS` speakers or a test speaker with fewer than :data:`MIN_TEST_UTTERANCES`
    recordings."""
    from spkpeft.data.manifest_ops import split_by_speaker
    from spkpeft.data.prepare import prepare_folder

    paths = {"adapt": data / "adapt.jsonl.gz", "test": data / "test.jsonl.gz", "trials": data / "trials.txt"}
    if not paths["trials"].is_file():
        prepared = prepare_folder(audio, data / "all", speaker_level=1, name="audio")["audio"]
        speakers = _by_speaker(prepared)
        if len(speakers) < MIN_SPEAKERS:
            raise ValueError(
                f"--audio {audio}: {len(speakers)} speaker folder(s) ({', '.join(sorted(speakers))}); the "
                f"demo needs at least {MIN_SPEAKERS} (one sub-folder per speaker) to adapt on some and "
                "test on others"
            )
        split = split_by_speaker(prepared, data / "all", held_out_speakers(len(speakers)), seed)
        test = _by_speaker(split["test"])
        short = {s: len(u) for s, u in sorted(test.items()) if len(u) < MIN_TEST_UTTERANCES}
        if short:
            raise ValueError(
                f"--audio {audio}: test speaker(s) with fewer than {MIN_TEST_UTTERANCES} recordings: "
                + ", ".join(f"{s} ({n})" for s, n in short.items())
                + "; every speaker folder needs at least 2 recordings (or change --seed to test on others)"
            )
        split["train"].replace(paths["adapt"])
        split["test"].replace(paths["test"])
        write_demo_trials(test, targets, nontargets, seed, paths["trials"])
    counts = {k: len(_by_speaker(paths[k])) for k in ("adapt", "test")}
    return {"paths": paths, "speakers": counts}
