"""The synthetic proof: a tiny Whisper learns single synthetic voices, is frozen, and is prompt-tuned on
two-speaker mixtures; its WER on held-out mixtures of held-out speakers is compared with the frozen
model's. Runs without downloads (``spkpeft tsasr demo``; the test runs a smaller version)."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from spkpeft.data.manifest import CutSet
from spkpeft.tsasr.config import load_config
from spkpeft.tsasr.data import MixtureData, build_source
from spkpeft.tsasr.evaluate import decode, normalizer, score, search_name
from spkpeft.tsasr.methods import TSASR_METHODS
from spkpeft.tsasr.model import ModelConfig, TSWhisper
from spkpeft.tsasr.simulate import SimulateConfig, simulate_mixtures
from spkpeft.tsasr.slots import IGNORE
from spkpeft.tsasr.tiny import build_tiny_whisper
from spkpeft.tsasr.units import make_unit_corpus, random_text

log = logging.getLogger(__name__)


@dataclass
class DemoSizes:
    """Defaults = the measured configuration of docs/tsasr.md (the proof test uses them, greedy only)."""

    train_speakers: int = 24
    test_speakers: int = 6
    utterances: int = 20
    train_mixtures: int = 800
    test_mixtures: int = 60
    pretrain_steps: int = 600
    tune_steps: int = 800
    batch_size: int = 16
    prompt_length: int = 8
    tune_lr: float = 1e-2
    words: tuple[int, int] = (3, 5)
    overlap: tuple[float, float] = (0.0, 0.25)
    snr_db: tuple[float, float] = (-3.0, 3.0)
    background_db: tuple[float, float] = (10.0, 20.0)  # pretraining: background voice this far below
    whisper_width: int = 64  # tiny Whisper d_model (FFN 2x, one head per 32 dims)
    whisper_layers: int = 2  # encoder and decoder blocks each
    method: str = "prompt"  # what is tuned on the mixtures: prompt | lora | full (the baselines)
    beams: tuple[int, ...] = (1, 3)
    seed: int = 0

    def whisper_overrides(self) -> dict:
        """:func:`~spkpeft.tsasr.tiny.tiny_config` overrides for the tiny Whisper of these sizes."""
        w, n = self.whisper_width, self.whisper_layers
        heads = max(1, w // 32)
        return dict(d_model=w, encoder_layers=n, decoder_layers=n, encoder_attention_heads=heads,
                    decoder_attention_heads=heads, encoder_ffn_dim=2 * w, decoder_ffn_dim=2 * w)  # fmt: skip


def _whisper_like_batch(
    model: TSWhisper,
    items: list,
    rng: np.random.Generator,
    background: list,
    background_db: tuple[float, float] = (10.0, 20.0),
) -> dict:
    """A batch as Whisper sees in its own (in-the-wild) training: speech starting anywhere in the first
    0.4 s of the window; half the time a quieter voice of another speaker in the background
    (``background_db`` below, random offset; the label stays the main speaker's transcript, so the model
    learns to transcribe the dominant voice, as Whisper does); and half the time a "previous text" prompt
    (``<|startofprev|>`` + 1-14 tokens) before ``<|startoftranscript|>``, masked in the loss. Without the
    shifts and the prompts a tiny model never trains the positions the prompt slots use."""
    tok = model.tokenizer
    prev = tok.convert_tokens_to_ids("<|startofprev|>")
    wavs = []
    for wav, _, spk in items:
        wav = np.concatenate([np.zeros(rng.integers(0, 6400), np.float32), wav])
        if rng.random() < 0.5:
            other, _, ospk = background[rng.integers(len(background))]
            if ospk != spk:
                wav = _add_background(wav, other, rng.uniform(*background_db), rng)
        wavs.append(wav)
    seqs, masks = [], []
    for _, text, _ in items:
        ctx = []
        if rng.random() < 0.5:
            ctx = [prev] + tok(random_text(rng, (1, 7), 1), add_special_tokens=False).input_ids[:14]
        seqs.append(ctx + tok(text).input_ids)
        masks.append(len(ctx))
    u = max(len(q) for q in seqs) - 1
    ids = torch.full((len(seqs), u), tok.eos_token_id)
    labels = torch.full((len(seqs), u), IGNORE)
    for i, (q, k) in enumerate(zip(seqs, masks)):
        ids[i, : len(q) - 1] = torch.tensor(q[:-1])
        labels[i, k : len(q) - 1] = torch.tensor(q[k + 1 :])
    return {"input_features": model.features(wavs), "decoder_input_ids": ids, "labels": labels}


def _add_background(
    wav: np.ndarray, other: np.ndarray, snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    """``wav`` + ``other`` scaled ``snr_db`` below it, at a random offset inside ``wav`` (length kept)."""
    start = int(rng.integers(0, max(1, len(wav) - len(other) // 2)))
    seg = other[: len(wav) - start]
    gain = np.sqrt(np.mean(wav**2) / (np.mean(seg**2) + 1e-10) / 10 ** (snr_db / 10))
    out = wav.copy()
    out[start : start + len(seg)] += gain * seg
    return out


def pretrain_single(
    whisper_dir: Path,
    cuts,  # noqa: ANN001
    steps: int,
    batch_size: int,
    lr: float = 2e-3,
    seed: int = 0,
    background_db: tuple[float, float] = (10.0, 20.0),
) -> None:
    """Train every weight of the Whisper in ``whisper_dir`` on single-speaker utterances; save in place."""
    model = TSWhisper.from_config(ModelConfig(whisper=str(whisper_dir), method="frozen"), speaker_dim=1)
    whisper = model.whisper.requires_grad_(True)
    items = [(c.load_audio()[0], c.supervisions[0].text, c.supervisions[0].speaker) for c in cuts]
    opt = torch.optim.AdamW(whisper.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        idx = rng.integers(len(items), size=batch_size)
        b = _whisper_like_batch(model, [items[i] for i in idx], rng, items, background_db)
        loss = whisper(**b, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(whisper.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 100 == 0:
            log.info("single-speaker pretraining step %d loss %.4f", step, loss.item())
    whisper.save_pretrained(whisper_dir)


def prepare(work: Path, s: DemoSizes) -> Path:
    """Corpora, mixtures and the single-speaker Whisper under ``work`` (reused when already there).

    Mixtures: ``mix-train`` (training speakers, for tuning), ``mix-test`` (held-out speakers) and
    ``mix-seen`` (new mixtures of the training speakers, to tell memorised speakers from learned selection).
    """
    whisper_dir = work / "whisper-single"
    built = _built_with(s)
    if (whisper_dir / "done").exists():
        _check_same_build(whisper_dir / "done", built)
    else:
        train = make_unit_corpus(
            work / "corpus-train", s.train_speakers, s.utterances, s.seed, s.words, 1, "tr"
        )
        test = make_unit_corpus(
            work / "corpus-test", s.test_speakers, s.utterances, s.seed + 1, s.words, 1, "te"
        )
        _mixtures(train, work / "mix-train", s.train_mixtures, s, s.seed)
        _mixtures(test, work / "mix-test", s.test_mixtures, s, s.seed + 1)
        build_tiny_whisper(whisper_dir, chunk_seconds=2, seed=s.seed, **s.whisper_overrides())
        pretrain_single(
            whisper_dir, train, s.pretrain_steps, s.batch_size, seed=s.seed, background_db=s.background_db
        )
        (whisper_dir / "done").write_text(json.dumps(built, sort_keys=True))
    if not (work / "mix-seen" / "mixtures.jsonl.gz").exists():  # also for work dirs of older versions
        train = CutSet.from_file(work / "corpus-train" / "cuts.jsonl.gz")
        _mixtures(train, work / "mix-seen", s.test_mixtures, s, s.seed + 2)
    return whisper_dir


_TUNING_ONLY = {"tune_steps", "tune_lr", "method", "beams"}  # every other field shapes what prepare builds


def _built_with(s: DemoSizes) -> dict:
    """The sizes that shape what :func:`prepare` builds (JSON-ready)."""
    names = (f.name for f in fields(s) if f.name not in _TUNING_ONLY)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in ((k, getattr(s, k)) for k in names)}


def _check_same_build(done: Path, built: dict) -> None:
    """Refuse to reuse a work dir built with other sizes (its corpora and Whisper would not match)."""
    try:
        before = json.loads(done.read_text())
    except json.JSONDecodeError:  # written by an older version: sizes unknown
        log.warning("%s does not record the sizes it was built with; reusing it as is", done.parent.parent)
        return
    diff = {k: (before.get(k), v) for k, v in built.items() if before.get(k) != v}
    if diff:
        shown = ", ".join(f"{k}: built {a}, asked {b}" for k, (a, b) in sorted(diff.items()))
        raise ValueError(f"{done.parent.parent} was built with other sizes ({shown}); use a fresh work dir")


def _mixtures(cuts, out: Path, n: int, s: DemoSizes, seed: int) -> None:  # noqa: ANN001
    window = 2.0 - 2 * (s.prompt_length + 1) * 0.01  # the 2 s window less the encoder slots
    simulate_mixtures(cuts, out, SimulateConfig(n, s.overlap, s.snr_db, seed, window))


def run_demo(work: str | Path, sizes: DemoSizes | None = None) -> dict:
    """Prepare, evaluate the frozen Whisper, prompt-tune, evaluate; write and return ``report.json``."""
    from spkpeft.tsasr.train import train

    s = sizes or DemoSizes()
    tunable = [m for m in TSASR_METHODS.names() if TSASR_METHODS.config_cls(m).CONDITIONED]
    if s.method not in tunable:  # checked before the corpora and the Whisper are built
        raise ValueError(f"demo method={s.method!r} is unknown; valid: {', '.join(tunable)}")
    work = Path(work)
    whisper_dir = prepare(work, s)
    cfg = load_config(None, data={
        "model": {"whisper": str(whisper_dir), "method": s.method,
                  "prompts": {"length": s.prompt_length, "reparam": True}},
        "data": {"train": str(work / "mix-train" / "mixtures.jsonl.gz"), "cache": True},
        "optim": {"lr": s.tune_lr, "batch_size": s.batch_size, "max_steps": s.tune_steps, "warmup_steps": 50},
        "seed": s.seed, "log_every": 100,
    })  # fmt: skip
    source = build_source(cfg.speaker)
    test = MixtureData(work / "mix-test" / "mixtures.jsonl.gz", source, cache=True)
    frozen = TSWhisper.from_config(ModelConfig(whisper=str(whisper_dir), method="frozen"), test.speaker_dim())
    # each model decodes a set once; the greedy outputs are also scored against the interferer's transcript
    # (does the model follow the enrolment, or just pick a voice?)
    report = {}
    report["frozen"], report["frozen_vs_interferer"] = _both_references(frozen, test, s.beams)
    run = work / f"run-{s.method}"
    shutil.rmtree(run, ignore_errors=True)  # a fresh run, not a resumed one
    run = train(cfg, run)
    from spkpeft.tsasr.run import load_run

    tuned, _ = load_run(run)
    report["tuned"], report["tuned_vs_interferer"] = _both_references(tuned, test, s.beams)
    # and on new mixtures of training speakers: selection that works only there is memorised, not learned
    seen = MixtureData(work / "mix-seen" / "mixtures.jsonl.gz", source, cache=True)
    report["tuned_seen_speakers"], report["tuned_seen_speakers_vs_interferer"] = _both_references(
        tuned, seen, (1,)
    )
    report["method"], report["trainable_fraction"] = s.method, tuned.trainable_fraction()
    (work / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _both_references(model: TSWhisper, data: MixtureData, beams: tuple[int, ...]) -> tuple[dict, dict]:
    """Scores of ``beams`` against the target's transcripts, and of the greedy search (decoded even when
    not in ``beams``) against the interferer's (``custom["interferer_text"]``); each search decoded once."""
    hyps = decode(model, data, tuple(dict.fromkeys((1, *beams))))
    norm = normalizer("english", model.tokenizer)
    target = {c.id: c.supervisions[0].text for c in data.cuts}
    interferer = {c.id: c.custom["interferer_text"] for c in data.cuts}
    asked = {search_name(k): hyps[search_name(k)] for k in beams}
    return score(asked, target, norm), score({"greedy": hyps["greedy"]}, interferer, norm)
