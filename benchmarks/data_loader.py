"""Training-loader throughput (utterances/s, with and without augmentation), the synthetic corpus
generator's real-time factor, and for scale the speed of one CPU training step of a tiny WavLM.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/data_loader.py [--batches 10] [--workers 0 1]

Writes benchmarks/results/data_loader.{json,md}. Everything runs on synthetic data made on the fly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from spkpeft.data.audio import write_audio
from spkpeft.data.config import DataConfig
from spkpeft.data.manifest import CutSet, make_cut, save_manifest
from spkpeft.data.synth_corpus import SynthConfig, synth_corpus, synth_utterance
from spkpeft.data.train_dataset import build_train_loader, set_loader_epoch

RESULTS = Path(__file__).parent / "results"


def synth_rtf(n: int = 12) -> dict:
    cfg = SynthConfig()
    synth_utterance(0, 0, 0, cfg)
    t0, audio = time.perf_counter(), 0.0
    for u in range(n):
        wav, _ = synth_utterance(0, 1 + u // 4, u, cfg)
        audio += len(wav) / 16000
    wall = time.perf_counter() - t0
    return {"audio_s": round(audio, 2), "wall_s": round(wall, 3), "x_real_time": round(audio / wall, 1)}


def noise_and_rir(tmp: Path, speech: CutSet) -> tuple[Path, Path]:
    """A MUSAN-like noise manifest (coloured noise + synthetic speech for babble) and decaying RIRs."""
    rng = np.random.default_rng(0)
    cuts = []
    for i in range(4):
        spec = np.fft.rfft(rng.normal(size=16000 * 5)) / np.maximum(np.arange(40001), 1) ** (i / 4)
        p = write_path(tmp / "noise" / f"noise-{i}.wav", np.fft.irfft(spec, 80000))
        cuts.append(make_cut(p, f"noise-{i}", category="noise"))
    cuts += [c.with_custom("category", "speech") for c in speech.subset(first=10)]
    rirs = []
    for i in range(4):
        n = int(16000 * (0.2 + 0.2 * i))
        rir = rng.normal(size=n) * np.exp(-np.arange(n) / (n / 6))
        rirs.append(make_cut(write_path(tmp / "rir" / f"rir-{i}.wav", rir), f"rir-{i}", category="rir"))
    return (
        save_manifest(CutSet.from_cuts(cuts), tmp / "noise.jsonl.gz"),
        save_manifest(CutSet.from_cuts(rirs), tmp / "rir.jsonl.gz"),
    )


def write_path(path: Path, x: np.ndarray) -> Path:
    write_audio(path, 0.5 * x / np.max(np.abs(x)))
    return path


def loader_speed(cfg: DataConfig, batch_size: int, batches: int) -> dict:
    """Steady-state throughput over ``batches`` batches (epochs restart as needed; the first batch,
    with worker start-up, is not timed)."""
    loader = build_train_loader(cfg, batch_size)
    epoch, n, timed = 0, 0, 0
    t0 = 0.0
    while timed < batches:
        set_loader_epoch(loader, epoch)
        for batch in loader:
            if epoch == 0 and t0 == 0.0:
                t0 = time.perf_counter()
                continue
            n += len(batch["labels"])
            timed += 1
            if timed == batches:
                break
        epoch += 1
    wall = time.perf_counter() - t0
    return {"utts_per_s": round(n / wall, 1), "batches": batches, "batch_size": batch_size}


def tiny_step_speed(batch_size: int, crop_s: float, steps: int = 3) -> dict:
    """Forward + backward of a 2-layer, hidden-32 WavLM with a linear head, on one CPU thread."""
    from transformers import WavLMConfig, WavLMModel

    cfg = WavLMConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32, 32, 32, 32, 32),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    model = WavLMModel(cfg)
    head = torch.nn.Linear(32, 100)
    opt = torch.optim.Adam([*model.parameters(), *head.parameters()], 1e-3)
    x = torch.randn(batch_size, int(crop_s * 16000)) * 0.1
    y = torch.randint(0, 100, (batch_size,))
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(head(model(x).last_hidden_state.mean(1)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    step = float(np.median(times[1:]))
    return {"step_s": round(step, 3), "utts_per_s": round(batch_size / step, 1), "batch_size": batch_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()
    torch.set_num_threads(1)
    res: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__}
    }
    res["synth"] = synth_rtf()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        speech = synth_corpus(tmp / "corpus", SynthConfig(speakers=10, utterances=10, seed=1))
        noise, rir = noise_and_rir(tmp, speech)
        # 5 cuts per file (distinct ids) so an epoch is long enough to time without worker restarts
        big = CutSet.from_cuts(c.with_id(f"{c.id}#{k}") for k in range(5) for c in speech)
        base = dict(train_manifest=str(save_manifest(big, tmp / "train.jsonl.gz")), crop_seconds=2.0)
        aug = dict(
            speed_perturb=True, noise_manifest=str(noise), noise_prob=0.6, rir_manifest=str(rir), rir_prob=0.2
        )
        res["loader"] = {}
        for w in args.workers:
            res["loader"][f"plain_w{w}"] = loader_speed(
                DataConfig(**base, num_workers=w), args.batch_size, args.batches
            )
            res["loader"][f"augmented_w{w}"] = loader_speed(
                DataConfig(**base, **aug, num_workers=w), args.batch_size, args.batches
            )
    res["tiny_wavlm_train_step"] = tiny_step_speed(args.batch_size, 2.0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data_loader.json").write_text(json.dumps(res, indent=1) + "\n")
    (RESULTS / "data_loader.md").write_text(markdown(res))
    print(markdown(res))


def markdown(res: dict) -> str:
    rows = ["| what | utterances / s |", "|---|---|"]
    for name, r in res["loader"].items():
        kind, w = name.rsplit("_w", 1)
        rows.append(
            f"| loader, {kind}, {w} worker(s), 2 s crops, batch {r['batch_size']} | {r['utts_per_s']} |"
        )
    t = res["tiny_wavlm_train_step"]
    step = f"tiny WavLM (2 layers, hidden 32) train step, batch {t['batch_size']}, 1 thread"
    rows.append(f"| {step} | {t['utts_per_s']} |")
    s = res["synth"]
    return (
        f"# Data loader benchmark ({res['machine']['cpus']} CPUs, torch {res['machine']['torch']})\n\n"
        + "\n".join(rows)
        + f"\n\nSynthetic corpus generator: {s['x_real_time']}x real time on one core "
        f"({s['audio_s']} s of audio in {s['wall_s']} s).\n"
        "Augmented = speed perturbation (0.9/1.0/1.1) + MUSAN-style noise p 0.6 + RIR p 0.2.\n"
    )


if __name__ == "__main__":
    main()
