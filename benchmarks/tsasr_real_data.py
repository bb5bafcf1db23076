"""Data of the real target-speaker ASR benchmark (``tsasr_real.py``): stretches of real LibriSpeech
recordings, their references, enrolment embeddings and seeded two-speaker mixtures.

Each recording is cut into stretches (:mod:`spkpeft.tsasr.stretches`): ``src`` (the first 3.5 s: what goes
into mixtures), for the training speakers also ``src2`` (the next 3.5 s after a 0.5 s gap: unheard speech
of seen speakers, for the ``seen`` rows) and ``enrol`` (after another 0.5 s gap, up to 4 s: the enrolment,
never mixed). References: these
folders carry no transcripts, so the reference of every stretch is the frozen Whisper tiny.en's own
transcript of it (clean, greedy, its full 30 s window). Enrolment embeddings: ``SpeakerVerifier.embed``
of a trained spkpeft speaker model (default: the real-speech benchmark's LoRA Whisper-encoder run, trained
on real-speech-train speakers, never on real-speech-mini).

Layout under ``OUT/data``: ``stretches/*.wav``, ``stretches.json`` (id -> speaker, kind, path, text),
``embeddings.npz`` (enrolment id -> vector) and ``mix_{train,seen,heldout}/mixtures.jsonl.gz``.
Everything is kept when present (delete the folder to rebuild).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from spkpeft.atomic import replace_file
from spkpeft.tsasr import stretches as st

TRAIN_STRETCHES = st.StretchConfig(src_seconds=3.5, gap_seconds=0.5, sources=2, enrol_seconds=4.0)
HELDOUT_STRETCHES = st.StretchConfig(src_seconds=3.5, gap_seconds=0.5, sources=1, enrol_seconds=4.0)
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
TRAIN_DIR = "real-speech-train/librispeech-train-clean-100"
TEST_DIR = "real-speech-mini/librispeech-test-other"
SPEAKER_MODEL = Path(__file__).resolve().parents[1] / "bench_out/real_speech/runs/lora-linear-s0"
MIXTURES = {"train": 1000, "seen": 60, "heldout": 60}
OVERLAP, SNR_DB = (0.5, 1.0), (-3.0, 3.0)
log = logging.getLogger("tsasr_real")


def shared_data(root: Path = SHARED) -> Path:
    root = root.resolve()
    missing = [d for d in (TRAIN_DIR, TEST_DIR) if not (root / d).is_dir()]
    if missing:
        raise SystemExit(f"real speech not found: {', '.join(str(root / d) for d in missing)}")
    return root


def embed_enrolments(table: dict[str, dict], speaker_model: Path, out: Path) -> None:
    """``embeddings.npz``: enrolment stretch id -> ``SpeakerVerifier.embed`` vector. Vectors already in
    the file are kept; only missing enrolments (e.g. new speed copies) are embedded."""
    from spkpeft import SpeakerVerifier
    from spkpeft.tsasr.embeddings import FileEmbeddings, save_embeddings

    path = out / "embeddings.npz"
    vecs = dict(FileEmbeddings(path).table) if path.is_file() else {}
    todo = [i for i, r in table.items() if r["kind"] == "enrol" and i not in vecs]
    if not todo:
        return
    verifier = SpeakerVerifier.from_pretrained(speaker_model)
    for k, i in enumerate(todo):
        vecs[i] = verifier.embed(table[i]["path"])
        if k % 100 == 99:
            log.info("enrolment embeddings: %d / %d", k + 1, len(todo))
    save_embeddings(vecs, path)


def ge2e_embeddings(table: dict[str, dict], out: Path) -> Path:
    """``embeddings_ge2e.npz``: enrolment stretch id -> Resemblyzer's GE2E vector (256-d, unit length), a
    speaker encoder trained on thousands of outside speakers, for comparing embedding sources (needs
    ``pip install resemblyzer 'setuptools<81'``). Kept when it holds every enrolment."""
    path = out / "embeddings_ge2e.npz"
    ids = [i for i, r in table.items() if r["kind"] == "enrol"]
    if path.is_file() and set(ids) <= set(np.load(path).files):
        return path
    try:
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError:
        raise SystemExit("--ge2e needs resemblyzer: pip install resemblyzer 'setuptools<81'") from None
    from spkpeft.data.audio import read_audio
    from spkpeft.tsasr.embeddings import save_embeddings

    enc = VoiceEncoder("cpu", verbose=False)
    vecs = {
        i: enc.embed_utterance(preprocess_wav(read_audio(table[i]["path"]), source_sr=16000)) for i in ids
    }
    save_embeddings({k: v.astype(np.float32) for k, v in vecs.items()}, path)
    return path


def mixture_sets(
    table: dict[str, dict],
    out: Path,
    seed: int,
    overlap: tuple = OVERLAP,
    snr_db: tuple = SNR_DB,
    train_mixtures: int = MIXTURES["train"],
    pairs: bool = False,
) -> dict[str, Path]:
    """Seeded mixtures: ``train`` and ``seen`` from training speakers (``src`` / ``src2`` stretches),
    ``heldout`` from real-speech-mini; the enrolment is the target recording's ``enrol`` stretch.
    ``overlap`` and ``snr_db`` are the ranges the overlap ratio and the target-to-interferer ratio are
    drawn from (overlap 0: the two speakers take turns). No mixture pairs a voice with a speed copy of
    itself (``stretches.kin_of``). ``pairs``: the training set holds ``train_mixtures / 2`` mixtures,
    each twice (once per speaker as the target: ``SimulateConfig.both_targets``)."""
    from spkpeft.tsasr.simulate import SimulateConfig, simulate_mixtures
    from spkpeft.tsasr.stretches import sources_and_enrolments

    kinds = {"train": ("train", "src"), "seen": ("train", "src2"), "heldout": ("heldout", "src")}
    counts = {**MIXTURES, "train": train_mixtures}
    kin = st.kin_of(table)
    paths = {}
    for k, (split, kind) in kinds.items():
        src, enrol = sources_and_enrolments(table, split, kind)
        both = pairs and k == "train"
        n = counts[k] // 2 if both else counts[k]
        cfg = SimulateConfig(n, tuple(overlap), tuple(snr_db), seed + list(kinds).index(k), both_targets=both)
        simulate_mixtures(src, out / f"mix_{k}", cfg, enrolments=enrol, kin=kin)
        paths[k] = out / f"mix_{k}" / "mixtures.jsonl.gz"
    return paths


def prepare(
    out: Path,
    seed: int = 0,
    speaker_model: Path = SPEAKER_MODEL,
    overlap: tuple = OVERLAP,
    snr_db: tuple = SNR_DB,
    speeds: tuple = (1.0,),
    train_mixtures: int = MIXTURES["train"],
    pairs: bool = False,
    ge2e: bool = False,
) -> dict[str, Path]:
    """Everything under ``out`` (kept when present); returns the mixture manifests and embeddings.
    ``speeds`` other than 1 add speed copies of the training speakers' sources and enrolments, each a
    new pseudo-speaker (``stretches.speed_copies``; the ``seen`` and ``heldout`` sets stay natural).
    ``ge2e``: also Resemblyzer GE2E embeddings (``embeddings_ge2e`` in the result).
    ``pairs``: training cuts come in pairs (each mixture once per speaker as the target; train with
    ``data.pair_targets``). Mixtures kept from an earlier call with other ``seed``, ``overlap``,
    ``snr_db``, ``speeds``, ``train_mixtures`` or ``pairs`` are refused."""
    out.mkdir(parents=True, exist_ok=True)
    settings = {"seed": seed, "overlap": list(overlap), "snr_db": list(snr_db)}
    speeds = tuple(sorted({1.0, *speeds}))
    if speeds != (1.0,):  # only when used, so folders made before these options still match
        settings["speeds"] = list(speeds)
    if train_mixtures != MIXTURES["train"]:
        settings["train_mixtures"] = train_mixtures
    if pairs:
        settings["pairs"] = True
    kept = out / "mixtures.json"
    if kept.is_file() and json.loads(kept.read_text()) != settings:
        raise SystemExit(
            f"{out} holds mixtures made with {kept.read_text().strip()}, not {settings}: use another --out"
        )
    meta = out / "stretches.json"
    if not meta.is_file():
        root = shared_data()
        train = st.folder_recordings("train", root / TRAIN_DIR)
        heldout = st.folder_recordings("heldout", root / TEST_DIR)
        table = {
            **st.write_stretches(train, out / "stretches", TRAIN_STRETCHES),
            **st.write_stretches(heldout, out / "stretches", HELDOUT_STRETCHES),
        }
        st.transcribe_references(table)
        replace_file(meta, lambda tmp: tmp.write_text(json.dumps(table, indent=1)))
    table = json.loads(meta.read_text())
    have = {r["speed"] for r in table.values() if "speed" in r}
    if have | {1.0} != set(speeds):
        if have:
            raise SystemExit(
                f"{meta} holds speed copies at {sorted(have)}, not {list(speeds)}: use another --out"
            )
        table.update(st.speed_copies(table, speeds, out / "stretches"))
        replace_file(meta, lambda tmp: tmp.write_text(json.dumps(table, indent=1)))
    embed_enrolments(table, speaker_model, out)
    paths = {k: out / f"mix_{k}" / "mixtures.jsonl.gz" for k in MIXTURES}
    if not all(p.is_file() for p in paths.values()):
        paths = mixture_sets(table, out, seed, overlap, snr_db, train_mixtures, pairs)
    kept.write_text(json.dumps(settings) + "\n")
    extra = {"embeddings_ge2e": ge2e_embeddings(table, out)} if ge2e else {}
    return {**paths, "embeddings": out / "embeddings.npz", **extra}
