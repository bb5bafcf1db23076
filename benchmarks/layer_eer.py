"""What a backbone's layers say about speakers, untrained: the EER of each hidden state mean-pooled over
time and compared by cosine, over every pair of utterances of ``../shared/data/real-speech-mini``
(LibriSpeech test-other 10 x 10 and VCTK 4 x 10; 140 utterances, 9,730 pairs).

    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/layer_eer.py BACKBONE [--name NAME]

BACKBONE is anything ``load_backbone`` takes (a preset: random weights; a model directory). Writes
benchmarks/results/layer_eer_NAME.{json,md}. Each utterance runs alone (no padding), whole (all are
under 30 s).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from spkpeft.backbones import load_backbone
from spkpeft.eval.metrics import det_curve, eer_from_det

RESULTS = Path(__file__).parent / "results"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-speech-mini"


def utterances(root: Path) -> list[tuple[str, Path]]:
    """(speaker, file) of every utterance; the speaker is the first folder under each set."""
    files = sorted([*root.glob("librispeech-test-other/*/*.flac"), *root.glob("vctk/*/*.wav")])
    return [(f"{f.parent.parent.name}/{f.parent.name}", f) for f in files]


@torch.no_grad()
def pooled_states(backbone_name: str, files: list[Path]) -> np.ndarray:
    """(N, L+1, D) time-averaged hidden states, one utterance at a time."""
    bb = load_backbone(backbone_name).eval()
    out = []
    for f in files:
        wav, sr = sf.read(f, dtype="float32")
        if sr != 16000 or wav.ndim != 1:
            raise ValueError(f"{f}: expected 16 kHz mono, got {sr} Hz, shape {wav.shape}")
        out.append(bb(torch.from_numpy(wav)[None]).hidden_states[:, 0].mean(1).numpy())
    return np.stack(out)


def layer_eers(states: np.ndarray, speakers: list[str]) -> list[float]:
    """EER (%) of cosine scores of every pair, per layer."""
    i, j = np.triu_indices(len(speakers), k=1)
    labels = (np.array(speakers)[i] == np.array(speakers)[j]).astype(int)
    x = states / np.linalg.norm(states, axis=-1, keepdims=True)
    return [100 * eer_from_det(det_curve((x[i, k] * x[j, k]).sum(-1), labels))[0] for k in range(x.shape[1])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("backbone")
    ap.add_argument("--name", help="results file name (default: the backbone's last path part)")
    args = ap.parse_args()
    name = args.name or Path(args.backbone).name
    utts = utterances(DATA)
    if not utts:
        raise SystemExit(f"no utterances under {DATA}")
    t0 = time.time()
    eers = layer_eers(pooled_states(args.backbone, [f for _, f in utts]), [s for s, _ in utts])
    res = {
        "backbone": args.backbone,
        "utterances": len(utts),
        "eer_percent": eers,
        "seconds": time.time() - t0,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"layer_eer_{name}.json").write_text(json.dumps(res, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {e:.2f} |" for k, e in enumerate(eers))
    title = f"# Layer EER, {args.backbone} (untrained, mean-pooled, cosine, all pairs)"
    md = f"{title}\n\n| state | EER % |\n|---|---|\n"
    (RESULTS / f"layer_eer_{name}.md").write_text(md + rows + "\n")
    print(md + rows)


if __name__ == "__main__":
    main()
