"""The corpus extension point: ``spkpeft data prepare CORPUS ROOT OUT`` -> CutSet manifests (+ trial lists).

A corpus is one entry of :data:`CORPORA`: ``prepare(root, out, num_jobs=1, **options) -> {manifest name:
path}``, where ``root`` is the corpus as distributed, ``out`` the folder the manifests are written to, and
the options are keyword arguments only some corpora take (``folder``'s ``speaker_level``). The first line
of the builder's docstring is its line in ``spkpeft data prepare --help``.

The entries here are thin: each imports its preparer when called, so that building the CLI's help (which
lists :data:`CORPORA`) imports neither lhotse nor numpy. Adding a corpus: a preparer module and one
registered function here (or in any module imported before the CLI is built); docs/data.md gives the
layout it expects.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from spkpeft.registry import Registry

Prepare = Callable[..., dict[str, Path]]

CORPORA: Registry[dict[str, Path]] = Registry("corpus", "corpora")


@CORPORA.register("voxceleb")
def voxceleb(root: str | Path, out: str | Path, num_jobs: int = 1) -> dict[str, Path]:
    """VoxCeleb1, VoxCeleb2 dev (wav/flac) -> vox1_dev/test/all, vox2_dev, official trial lists."""
    from spkpeft.data.prepare import prepare_voxceleb

    return prepare_voxceleb(root, out, num_jobs)


@CORPORA.register("cnceleb")
def cnceleb(root: str | Path, out: str | Path, num_jobs: int = 1) -> dict[str, Path]:
    """CN-Celeb1 and/or CN-Celeb2 (flac) -> cnceleb1_dev/eval, cnceleb2, cnceleb_train, trials."""
    from spkpeft.data.prepare import prepare_cnceleb

    return prepare_cnceleb(root, out, num_jobs)


@CORPORA.register("librispeech")
def librispeech(root: str | Path, out: str | Path, num_jobs: int = 1) -> dict[str, Path]:
    """LibriSpeech (lhotse recipe) -> librispeech_PART per part, with transcripts."""
    from spkpeft.data.prepare_lhotse import prepare_librispeech

    return prepare_librispeech(root, out, num_jobs)


@CORPORA.register("musan")
def musan(root: str | Path, out: str | Path, num_jobs: int = 1) -> dict[str, Path]:
    """MUSAN (lhotse recipe) -> musan, the noises for data.noise_manifest."""
    from spkpeft.data.prepare_lhotse import prepare_musan

    return prepare_musan(root, out, num_jobs)


@CORPORA.register("rir")
def rir(root: str | Path, out: str | Path, num_jobs: int = 1) -> dict[str, Path]:
    """RIRS_NOISES (lhotse recipe) -> rir, the room responses for data.rir_manifest."""
    from spkpeft.data.prepare_lhotse import prepare_rir

    return prepare_rir(root, out, num_jobs)


@CORPORA.register("folder")
def folder(root: str | Path, out: str | Path, num_jobs: int = 1, speaker_level: int = 1) -> dict[str, Path]:
    """Any ROOT/SPEAKER/**/*.{wav,flac,...} tree (or deeper: --speaker-level) -> folder."""
    from spkpeft.data.prepare import prepare_folder

    return prepare_folder(root, out, num_jobs=num_jobs, speaker_level=speaker_level)


def describe() -> str:
    """One line per registered corpus, ``name  first docstring line``, for the CLI's help."""
    width = max(map(len, CORPORA.names()))
    return "\n".join(f"  {n:<{width}}  {CORPORA.entry(n).doc}" for n in CORPORA.names())


def prepare(corpus: str, root: str | Path, out: str | Path, num_jobs: int = 1, **options: object) -> dict:
    """Prepare ``corpus`` found at ``root`` into ``out``; returns {manifest or trial-list name: path}.

    ``options`` are passed to the corpus's builder; one given as None counts as not given, and one the
    builder does not take is a ValueError naming the corpora that do.
    """
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; valid corpora: {', '.join(CORPORA.names())}")
    builder = CORPORA.get(corpus)
    given = {k: v for k, v in options.items() if v is not None}
    for key in given:
        if key not in _parameters(builder):
            takers = [n for n in CORPORA.names() if key in _parameters(CORPORA.get(n))]
            raise ValueError(
                f"--{key.replace('_', '-')} applies to corpus {', '.join(map(repr, takers))} only, "
                f"not {corpus!r}"
            )
    return builder(root, out, num_jobs=num_jobs, **given)


def _parameters(builder: Prepare) -> set[str]:
    return set(inspect.signature(builder).parameters)
