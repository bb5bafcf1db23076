"""``spkpeft convert``: turn checkpoints of other runtimes into transformers directories.

``spkpeft convert faster-whisper CT2_DIR OUT_DIR [--force]`` reads a faster-whisper / CTranslate2 Whisper
directory (``model.bin``, ``config.json``, ``tokenizer.json``, vocabulary) and writes a
``WhisperForConditionalGeneration`` directory (float32 safetensors, config, generation config, tokenizer,
feature extractor) that ``from_pretrained`` and ``--set backbone.name_or_path=OUT_DIR`` load.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert", help="convert other checkpoint formats to transformers", description=__doc__
    )
    sub = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    fw = sub.add_parser(
        "faster-whisper",
        help="faster-whisper / CTranslate2 Whisper dir -> transformers Whisper dir",
        description=__doc__,
    )
    fw.add_argument(
        "ct2_dir", metavar="CT2_DIR", help="directory with model.bin, config.json, tokenizer.json"
    )
    fw.add_argument("out_dir", metavar="OUT_DIR", help="where to write the transformers model")
    fw.add_argument("--force", action="store_true", help="replace a non-empty OUT_DIR")
    fw.set_defaults(func=run_faster_whisper)


def run_faster_whisper(args: argparse.Namespace) -> int:
    from spkpeft.backbones.faster_whisper import convert_faster_whisper

    record = convert_faster_whisper(args.ct2_dir, args.out_dir, force=args.force)
    print(
        f"wrote {args.out_dir}: WhisperForConditionalGeneration, {record['parameters']:,} parameters "
        f"(from {record['ct2_spec']}, stored as {', '.join(record['stored_dtypes'])}; saved as float32)"
    )
    return 0
