"""``spkpeft embed RUN MANIFEST OUT`` and ``spkpeft embed-file AUDIO --model DIR``: speaker embeddings.

``embed`` writes the embeddings of every utterance of a manifest into the directory OUT (safetensors
shards with ids and durations, see docs/eval.md); utterances already there are skipped, so a rerun
computes nothing and an interrupted one resumes. ``embed-file`` embeds one audio file (any format
soundfile reads; resampled to 16 kHz, stereo mixed to mono) and prints it or saves it as .npy.
"""

from __future__ import annotations

import argparse
import json
import sys

EMBED_HELP = """Embed every utterance of MANIFEST with the model of RUN into the directory OUT:
safetensors shards holding the embeddings with their utterance ids and durations (docs/eval.md).
Utterances already in OUT are skipped, so a rerun computes nothing and an interrupted run resumes.
Recordings longer than --chunk-seconds are embedded in overlapping windows whose embeddings are averaged."""

EMBED_FILE_HELP = """Embed one audio file (any format soundfile reads; resampled to 16 kHz, stereo mixed to
mono) with the model of a run or export; print the embedding as a JSON list, or save it with --out as .npy."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embed every utterance of a manifest (cached)", description=EMBED_HELP)
    p.add_argument("run", help="run directory (with model/) or saved/exported model directory")
    p.add_argument("manifest", help="lhotse CutSet manifest (*.jsonl.gz)")
    p.add_argument("out", help="output directory of embedding shards (reused as a cache)")
    _extraction_args(p)
    p.set_defaults(func=run_embed)

    f = sub.add_parser("embed-file", help="embed one audio file", description=EMBED_FILE_HELP)
    f.add_argument("audio", help="audio file (wav, flac, ogg, ... any sample rate, mono or stereo)")
    f.add_argument("--model", required=True, help="run directory or exported model directory")
    f.add_argument("--out", help="save the embedding as .npy here (else print it as JSON)")
    f.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    f.set_defaults(func=run_embed_file)


def _extraction_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=16, help="utterances per batch (default 16)")
    p.add_argument("--max-batch-seconds", type=float, default=400.0,
                   help="cap on padded audio per batch, seconds (default 400)")  # fmt: skip
    p.add_argument("--chunk-seconds", type=float, default=20.0,
                   help="longer recordings: windows of this length, averaged (default 20)")  # fmt: skip
    p.add_argument("--overlap-seconds", type=float, default=2.0, help="window overlap (default 2)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a tty")


def run_embed(args: argparse.Namespace) -> int:
    from spkpeft.progress import sync_transformers_progress

    sync_transformers_progress()
    from spkpeft.eval.embed import ChunkSettings, cache_key, embed_manifest, model_fingerprint
    from spkpeft.model import default_device, load_speaker_model, model_dir_of

    model_dir = model_dir_of(args.run)
    chunks = ChunkSettings(args.chunk_seconds, args.overlap_seconds)
    chunks.samples()  # validate before loading anything
    model = load_speaker_model(model_dir, device=args.device or default_device())
    key = cache_key(model_fingerprint(model_dir), chunks)
    table = embed_manifest(
        model, args.manifest, args.out, key, chunks, args.batch_size, args.max_batch_seconds
    )
    print(f"{len(table)} embeddings of dimension {table.dim} in {args.out}")
    return 0


def run_embed_file(args: argparse.Namespace) -> int:
    from spkpeft.progress import sync_transformers_progress

    sync_transformers_progress()
    import numpy as np

    from spkpeft.api import SpeakerVerifier

    verifier = SpeakerVerifier.from_pretrained(args.model, device=args.device)
    emb = verifier.embed(args.audio)
    if args.out:
        np.save(args.out, emb)
        print(f"embedding of {args.audio} (dimension {emb.shape[0]}) saved to {args.out}")
    else:
        sys.stdout.write(json.dumps([round(float(x), 6) for x in emb]) + "\n")
    return 0
