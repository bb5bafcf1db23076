"""``spkpeft data ...``: prepare corpora, make and check trial lists, check audio, synthesise a corpus."""

from __future__ import annotations

import argparse
import json

from spkpeft.data.corpora import CORPORA, describe


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="speech data: manifests, trials, checks, synthetic corpus")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    q = sub.add_parser(
        "prepare",
        help="corpus on disk -> lhotse CutSet manifests (+ trial lists)",
        description=f"Corpora (docs/data.md shows the layout each expects):\n{describe()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("corpus", metavar="CORPUS", help=f"one of: {', '.join(CORPORA.names())}")
    q.add_argument("root", help="the corpus directory as distributed")
    q.add_argument("out", help="output directory for the manifests")
    q.add_argument("--jobs", type=int, default=1, help="parallel processes reading audio headers")
    q.add_argument(
        "--speaker-level",
        type=int,
        default=None,
        help="folder only: which folder level under ROOT is the speaker (default 1 = ROOT/SPEAKER/...; "
        "2 for ROOT/CORPUS/SPEAKER/..., speaker named CORPUS/SPEAKER)",
    )
    q.set_defaults(func=_prepare)

    q = sub.add_parser(
        "combine",
        help="concatenate manifests into one (cut ids must be unique)",
        description="Write the cuts of every INPUT manifest into OUT; a cut id present in two inputs is "
        "an error naming both files.",
    )
    q.add_argument("out", help="combined manifest to write (*.jsonl.gz)")
    q.add_argument("inputs", nargs="+", metavar="INPUT", help="manifests to combine (two or more)")
    q.set_defaults(func=_combine)

    q = sub.add_parser(
        "split",
        help="split a manifest into train/test with disjoint speakers",
        description="Draw --test-speakers speakers of MANIFEST at random (seeded) and write their "
        "utterances to OUT_DIR/test.jsonl.gz, all other speakers' to OUT_DIR/train.jsonl.gz. Make test "
        "trials with `spkpeft data trials OUT_DIR/test.jsonl.gz ...`.",
    )
    q.add_argument("manifest", help="manifest to split (every cut needs a speaker)")
    q.add_argument("out_dir", help="directory for train.jsonl.gz and test.jsonl.gz")
    q.add_argument("--test-speakers", type=int, required=True, help="number of speakers in the test part")
    q.add_argument("--seed", type=int, default=0, help="random seed of the speaker draw (default 0)")
    q.set_defaults(func=_split)

    q = sub.add_parser(
        "trials",
        help="balanced trial list for a manifest",
        description="Write a trial list (lines 'label enroll test', label 1 = same speaker) drawn from "
        "the utterances of MANIFEST: --targets same-speaker and --nontargets different-speaker pairs of "
        "distinct utterances, spread evenly over speakers, no pair twice, deterministic for a seed. The "
        "ids written are the manifest's cut ids, which is what `spkpeft eval --manifest` matches.",
    )
    q.add_argument("manifest", help="lhotse CutSet manifest (*.jsonl.gz) whose utterances are paired")
    q.add_argument("out", help="trial list file to write")
    q.add_argument("--targets", type=int, required=True, help="number of same-speaker (label 1) pairs")
    q.add_argument(
        "--nontargets", type=int, required=True, help="number of different-speaker (label 0) pairs"
    )
    q.add_argument("--seed", type=int, default=0, help="random seed of the draw (default 0)")
    q.set_defaults(func=_trials)

    q = sub.add_parser("check", help="read every file of a manifest and report bad audio")
    q.add_argument("manifest")
    q.add_argument("--min-seconds", type=float, default=0.5, help="shorter utterances are reported")
    q.add_argument("--show", type=int, default=5, help="offending paths shown per problem")
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.set_defaults(func=_check)

    q = sub.add_parser("synth", help="write a synthetic speaker corpus (audio + manifest)")
    q.add_argument("out")
    q.add_argument("--speakers", type=int, default=20)
    q.add_argument("--utterances", type=int, default=10, help="utterances per speaker")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--difficulty", type=float, default=None, help="0 easy .. 1 hard (default 0.3)")
    q.add_argument("--speaker-offset", type=int, default=0, help="first speaker index (disjoint sets)")
    q.add_argument(
        "--test-speakers",
        type=int,
        default=0,
        help="also write test.jsonl.gz with this many other speakers and trials.txt",
    )
    q.add_argument("--targets", type=int, default=200, help="target trials (with --test-speakers)")
    q.add_argument("--nontargets", type=int, default=200, help="non-target trials (with --test-speakers)")
    q.add_argument("--min-seconds", type=float, default=1.5)
    q.add_argument("--max-seconds", type=float, default=4.0)
    q.add_argument("--format", choices=("flac", "wav"), default="flac")
    q.set_defaults(func=_synth)

    q = sub.add_parser("baseline", help="mean-MFCC + cosine EER of a trial list (a floor to beat)")
    q.add_argument("manifest")
    q.add_argument("trials")
    q.set_defaults(func=_baseline)

    q = sub.add_parser("kaldi-import", help="Kaldi data dir (wav.scp, utt2spk[, segments, text]) -> manifest")
    q.add_argument("data_dir")
    q.add_argument("out", help="manifest path (*.jsonl.gz)")
    q.add_argument("--sample-rate", type=int, default=None, help="needed only for piped wav.scp")
    q.set_defaults(func=_kaldi_import)

    q = sub.add_parser("kaldi-export", help="manifest -> Kaldi data dir")
    q.add_argument("manifest")
    q.add_argument("out_dir")
    q.set_defaults(func=_kaldi_export)


def _prepare(args: argparse.Namespace) -> int:
    from spkpeft.data.corpora import prepare

    out = prepare(args.corpus, args.root, args.out, num_jobs=args.jobs, speaker_level=args.speaker_level)
    _print_manifests(out)
    return 0


def _print_manifests(paths: dict) -> None:
    """``name: path (N utterances, S speakers, H h)`` per manifest; trial lists by path only."""
    from spkpeft.data.manifest import load_manifest
    from spkpeft.data.manifest_ops import summarize

    for name, path in paths.items():
        if str(path).endswith(".jsonl.gz"):
            print(f"{name}: {path} ({summarize(load_manifest(path)).line()})")
        else:
            print(f"{name}: {path}")


def _combine(args: argparse.Namespace) -> int:
    from spkpeft.data.manifest_ops import combine_manifests

    _print_manifests({"combined": combine_manifests(args.inputs, args.out)})
    return 0


def _split(args: argparse.Namespace) -> int:
    from spkpeft.data.manifest_ops import split_by_speaker

    _print_manifests(split_by_speaker(args.manifest, args.out_dir, args.test_speakers, args.seed))
    return 0


def _trials(args: argparse.Namespace) -> int:
    from spkpeft.data.make_trials import group_by_speaker, make_trials
    from spkpeft.data.manifest import load_utterances
    from spkpeft.data.trials import write_trials

    utts = load_utterances(args.manifest)
    trials = make_trials(
        group_by_speaker([(u.id, u.speaker) for u in utts]), args.targets, args.nontargets, args.seed
    )
    write_trials(trials, args.out)
    print(f"wrote {len(trials)} trials ({args.targets} target, {args.nontargets} non-target) to {args.out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from spkpeft.data.check import check_manifest

    rep = check_manifest(args.manifest, args.min_seconds, keep=args.show)
    if args.json:
        print(json.dumps(rep.to_dict(), indent=1))
        return 0 if rep.ok else 1
    print(
        f"{args.manifest}: {rep.total} utterances, {rep.speakers} speakers, {rep.seconds / 3600:.2f} h read"
    )
    for problem, n in rep.counts.items():
        print(f"  {problem:18s} {n}")
        for ex in rep.examples[problem]:
            print(f"      {ex}")
    print("OK" if rep.ok else "PROBLEMS FOUND")
    return 0 if rep.ok else 1


def _synth(args: argparse.Namespace) -> int:
    from spkpeft.data.synth import DEFAULT_DIFFICULTY
    from spkpeft.data.synth_corpus import SynthConfig, synth_corpus, synth_demo

    kw = dict(
        difficulty=DEFAULT_DIFFICULTY if args.difficulty is None else args.difficulty,
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
        audio_format=args.format,
    )
    if args.test_speakers:
        if args.speaker_offset:
            raise ValueError("--speaker-offset and --test-speakers together: the demo split starts at 0")
        paths = synth_demo(
            args.out,
            args.speakers,
            args.test_speakers,
            args.utterances,
            args.seed,
            args.targets,
            args.nontargets,
            **kw,
        )
        for name, path in paths.items():
            print(f"{name}: {path}")
        return 0
    cfg = SynthConfig(args.speakers, args.utterances, args.seed, speaker_offset=args.speaker_offset, **kw)
    cuts = synth_corpus(args.out, cfg)
    print(f"wrote {len(cuts)} utterances ({cfg.speakers} speakers) to {args.out}/manifest.jsonl.gz")
    return 0


def _baseline(args: argparse.Namespace) -> int:
    from spkpeft.data.baseline import mfcc_cosine_eer
    from spkpeft.data.manifest import load_utterances
    from spkpeft.data.trials import read_trials

    eer = mfcc_cosine_eer(load_utterances(args.manifest, need_speaker=False), read_trials(args.trials))
    print(f"mean-MFCC + cosine EER: {100 * eer:.2f} %")
    return 0


def _kaldi_import(args: argparse.Namespace) -> int:
    from spkpeft.data.kaldi_io import import_kaldi

    cuts = import_kaldi(args.data_dir, args.out, args.sample_rate)
    print(f"wrote {len(cuts)} cuts to {args.out}")
    return 0


def _kaldi_export(args: argparse.Namespace) -> int:
    from spkpeft.data.kaldi_io import export_kaldi
    from spkpeft.data.manifest import load_manifest

    print(f"wrote {export_kaldi(load_manifest(args.manifest), args.out_dir)}")
    return 0
