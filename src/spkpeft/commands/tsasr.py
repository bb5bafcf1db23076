"""``spkpeft tsasr ...``: target-speaker ASR with a prompt-tuned frozen Whisper."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spkpeft.commands import add_set_option, reject_positional_overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tsasr", help="target-speaker ASR: Whisper prompt tuning (arXiv 2312.08079)")
    g = p.add_subparsers(dest="tsasr_command", metavar="SUBCOMMAND", required=True)

    s = g.add_parser("simulate", help="two-speaker mixtures with enrolment from a manifest with transcripts")
    s.add_argument("manifest", help="lhotse CutSet (speaker + text supervisions)")
    s.add_argument("out_dir")
    s.add_argument("--mixtures", type=int, default=1000)
    s.add_argument("--overlap", type=float, nargs=2, default=(0.5, 1.0), metavar=("MIN", "MAX"))
    s.add_argument("--snr", type=float, nargs=2, default=(-3.0, 3.0), metavar=("MIN_DB", "MAX_DB"))
    s.add_argument("--max-seconds", type=float, default=None, help="drop longer mixtures")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--both-targets", action="store_true",
                   help="each mixture twice, one per speaker as the target (data.pair_targets)")  # fmt: skip
    s.set_defaults(func=_simulate)

    t = g.add_parser("train", help="train a run from a YAML config")
    t.add_argument("config", help="YAML file or shipped TS-ASR recipe name (src/spkpeft/configs/tsasr/)")
    t.add_argument("stray", nargs="*", help=argparse.SUPPRESS)  # old positional a.b=c: a clear error
    add_set_option(t, "optim.lr=1e-3")
    t.add_argument("--out", default=None, help="run directory (default: out_dir of the config)")
    t.add_argument("--resume", action="store_true", help="continue the run directory's newest checkpoint")
    t.set_defaults(func=_train)

    e = g.add_parser("eval", help="WER (greedy and beam) of a run on mixtures")
    e.add_argument("run", help="a run directory, or with --frozen a Whisper hub id / directory")
    e.add_argument("--data", required=True, help="mixture manifest")
    e.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    e.add_argument("--normalizer", default="english", choices=["english", "basic", "none"])
    e.add_argument("--frozen", action="store_true", help="evaluate the plain Whisper (no slots)")
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--out", default=None, help="write the report JSON here")
    e.set_defaults(func=_eval)

    r = g.add_parser("transcribe", help="transcribe the target speaker of a mixture")
    r.add_argument("mixture")
    r.add_argument("--enroll", required=True, help="an utterance of the target speaker")
    r.add_argument("--model", required=True, help="run directory")
    r.add_argument("--beams", type=int, default=5)
    r.set_defaults(func=_transcribe)

    d = g.add_parser("demo", help="synthetic proof: frozen vs prompt-tuned tiny Whisper on mixtures")
    d.add_argument("work_dir")
    d.add_argument("stray", nargs="*", help=argparse.SUPPRESS)  # old `--set a=1 b=2`: a clear error
    add_set_option(d, "tune_steps=2000 (DemoSizes fields)")
    d.set_defaults(func=_demo)

    w = g.add_parser("tiny-whisper", help="write a random tiny Whisper (model, tokenizer, features) to a dir")
    w.add_argument("out_dir")
    w.add_argument("--chunk-seconds", type=int, default=2)
    w.set_defaults(func=_tiny)


def _simulate(a: argparse.Namespace) -> int:
    from lhotse import CutSet

    import spkpeft.data  # noqa: F401
    from spkpeft.tsasr.simulate import SimulateConfig, simulate_mixtures

    if not Path(a.manifest).is_file():
        raise FileNotFoundError(f"manifest not found: {a.manifest}")
    cfg = SimulateConfig(a.mixtures, tuple(a.overlap), tuple(a.snr), a.seed, a.max_seconds, a.both_targets)
    cs = simulate_mixtures(CutSet.from_file(a.manifest), a.out_dir, cfg)
    print(f"{len(cs)} mixtures -> {Path(a.out_dir) / 'mixtures.jsonl.gz'}")
    return 0


def _train(a: argparse.Namespace) -> int:
    from spkpeft.tsasr.config import load_config
    from spkpeft.tsasr.train import train

    reject_positional_overrides("tsasr train", a.stray)
    run = train(load_config(a.config, a.overrides), a.out, resume=a.resume)
    print(f"run written to {run}")
    return 0


def _eval(a: argparse.Namespace) -> int:
    from spkpeft.tsasr.config import SpeakerSection, load_config
    from spkpeft.tsasr.data import MixtureData, build_source
    from spkpeft.tsasr.evaluate import evaluate
    from spkpeft.tsasr.model import ModelConfig, TSWhisper
    from spkpeft.tsasr.run import CONFIG, load_run

    if a.frozen:
        source = build_source(SpeakerSection())
        model = TSWhisper.from_config(ModelConfig(whisper=a.run, method="frozen"), speaker_dim=1)
    else:
        source = build_source(load_config(Path(a.run) / CONFIG).speaker)
        model, _ = load_run(a.run)
    report = evaluate(model, MixtureData(a.data, source), a.beams, a.normalizer, a.batch_size)
    for name, sc in report.items():
        if name != "examples":
            print(_line(name, sc) + f"  ({sc['utterances']} utterances)")
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=2))
    return 0


def _line(name: str, sc: dict) -> str:
    return f"{name}: WER {100 * sc['wer']:6.2f} %  mean per-utterance WER {100 * sc['mean_utt_wer']:6.2f} %"


def _transcribe(a: argparse.Namespace) -> int:
    import torch

    from spkpeft.tsasr.config import load_config
    from spkpeft.tsasr.data import build_source, read_audio
    from spkpeft.tsasr.run import CONFIG, load_run

    cfg = load_config(Path(a.model) / CONFIG)
    source = build_source(cfg.speaker)
    emb = source.get(Path(a.enroll).stem, lambda: read_audio(a.enroll))
    model, _ = load_run(a.model)
    wav, _ = read_audio(a.mixture)
    print(model.transcribe([wav], torch.from_numpy(emb)[None], num_beams=a.beams)[0])
    return 0


def _demo(a: argparse.Namespace) -> int:
    from spkpeft.config import apply_overrides, parse
    from spkpeft.tsasr.demo import DemoSizes, run_demo

    reject_positional_overrides("tsasr demo", a.stray)
    report = run_demo(a.work_dir, parse(DemoSizes, apply_overrides({}, a.overrides)))
    for name in ("frozen", "tuned"):
        for search, sc in report[name].items():
            if search != "examples":
                print(_line(f"{name:7s} {search:7s}", sc))
    print("greedy, scored against the interferer's transcript, and on new mixtures of training speakers:")
    for name in ("frozen_vs_interferer", "tuned_vs_interferer", "tuned_seen_speakers",
                 "tuned_seen_speakers_vs_interferer"):  # fmt: skip
        print(_line(f"{name:35s}", report[name]["greedy"]))
    frac = 100 * report["trainable_fraction"]
    where = Path(a.work_dir) / "report.json"
    print(f"tuned = {report['method']}; trainable fraction {frac:.2f} %; report: {where}")
    return 0


def _tiny(a: argparse.Namespace) -> int:
    from spkpeft.tsasr.tiny import build_tiny_whisper

    print(build_tiny_whisper(a.out_dir, a.chunk_seconds))
    return 0
