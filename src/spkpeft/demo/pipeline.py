"""``spkpeft demo``: the whole toolkit end to end on a fresh machine, with no download.

1. Synthesise disjoint speaker sets (spkpeft.data.synth): *adaptation* and *test* speakers on a noisier
   target domain (written to disk as manifests, plus a trial list), and *pre-training* speakers on
   cleaner recordings (in memory, with the synthesiser's frame alignment).
2. Pre-train a tiny WavLM (random init) on what is said (frame-level unit recognition, as real SSL/ASR
   backbones are trained without speaker labels) and save it with ``save_pretrained``.
3. Load it back as a frozen backbone and train two speaker models on the adaptation speakers with the
   same back-end, loss and schedule: the *frozen* baseline (back-end only) and *UniPET-SPK*.
4. Evaluate both on the test trials (cosine, AS-norm, calibrated; report with plots) and summarise
   EER, minDCF and trainable parameters.

Every stage is skipped when its output exists, so an interrupted demo resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spkpeft.demo.content_pretrain import ContentPretrainConfig

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Sizes of the demo. The defaults run in about 4-5 minutes on 2 CPU cores."""

    out_dir: str = "demo_out"
    seed: int = 0
    pretrain_speakers: int = 40
    adapt_speakers: int = 30
    test_speakers: int = 10
    utterances: int = 8
    pretrain_difficulty: float = 0.1
    target_difficulty: float = 0.5
    targets: int = 200
    nontargets: int = 400
    hidden_size: int = 64
    layers: int = 4
    pretrain: ContentPretrainConfig = field(default_factory=ContentPretrainConfig)
    adapt_epochs: int = 80
    crop_seconds: float = 1.0
    batch_size: int = 32


@dataclass
class SystemResult:
    name: str
    method: str
    run_dir: str
    method_parameters: int
    trainable_parameters: int
    eer: dict[str, float]  # system (cosine / asnorm / calibrated) -> EER in %
    min_dcf: dict[str, float]  # system -> minDCF at p_target 0.01


def synthesise(cfg: DemoConfig, out: Path) -> dict[str, Path]:
    """Stage 1: the three corpora and the trial list (skipped when the trial list exists)."""
    from spkpeft.data.make_trials import make_trials
    from spkpeft.data.synth_corpus import SynthConfig, synth_corpus
    from spkpeft.data.trials import write_trials

    paths = {k: out / "data" / f"{k}.jsonl.gz" for k in ("adapt", "test")}
    paths["trials"] = out / "data" / "trials.txt"
    if paths["trials"].is_file():
        return paths
    n1, n2 = cfg.pretrain_speakers, cfg.adapt_speakers
    sets = [
        ("adapt", n2, n1, cfg.target_difficulty),
        ("test", cfg.test_speakers, n1 + n2, cfg.target_difficulty),
    ]
    test = None
    for name, n, offset, difficulty in sets:
        sc = SynthConfig(
            speakers=n, utterances=cfg.utterances, seed=cfg.seed, speaker_offset=offset, difficulty=difficulty
        )
        test = synth_corpus(out / "data", sc, paths[name].name)
    by_spk: dict[str, list[str]] = {}
    for cut in test:
        by_spk.setdefault(cut.supervisions[0].speaker, []).append(cut.id)
    write_trials(make_trials(by_spk, cfg.targets, cfg.nontargets, cfg.seed), paths["trials"])
    return paths


def pretrain(cfg: DemoConfig, out: Path) -> tuple[Path, dict[str, float]]:
    """Stage 2: content pre-training of a tiny WavLM on the pre-training speakers (speakers
    ``0 .. pretrain_speakers-1``, disjoint from adaptation and test); returns its ``save_pretrained``
    directory (written atomically; skipped when it exists)."""
    import torch

    from spkpeft.backbones import load_backbone
    from spkpeft.demo.content_pretrain import aligned_corpus, pretrain_content

    target = out / "pretrained-wavlm"
    info_path = target / "pretraining.json"
    if info_path.is_file():
        return target, json.loads(info_path.read_text())
    items = aligned_corpus(range(cfg.pretrain_speakers), cfg.utterances, cfg.seed, cfg.pretrain_difficulty)
    torch.manual_seed(cfg.seed)
    backbone = load_backbone(
        "tiny-wavlm",
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=4,
        intermediate_size=2 * cfg.hidden_size,
    )
    info = pretrain_content(backbone, items, cfg.pretrain)
    tmp = out / "pretrained-wavlm.tmp"
    backbone.model.save_pretrained(tmp)
    (tmp / "pretraining.json").write_text(json.dumps(info, indent=1) + "\n")
    tmp.replace(target)
    return target, info


def experiment(
    cfg: DemoConfig, name: str, method: dict, lr: dict, backbone: Path, manifest: Path, out: Path
) -> Any:
    """The experiment config of one adapted system (same back-end, loss and schedule for both)."""
    from spkpeft.experiment import experiment_from_dict

    return experiment_from_dict(
        {
            "backbone": {"name_or_path": str(backbone)},
            "method": method,
            "backend": {"name": "linear", "embed_dim": 64},
            "loss": {"name": "aam", "margin": 0.1, "scale": 30.0},
            "data": {
                "train_manifest": str(manifest),
                "crop_seconds": cfg.crop_seconds,
                "min_duration": 0.5,
                "seed": cfg.seed,
            },
            "optim": {
                "optimizer": "adam",
                "lr": lr,
                "warmup_fraction": 0.1,
                "schedule": "cosine",
                "final_lr_ratio": 0.05,
            },
            "train": {
                "batch_size": cfg.batch_size,
                "epochs": cfg.adapt_epochs,
                "log_every": 10,
                "seed": cfg.seed,
                "output_dir": str(out / name),
            },
        }
    )


SYSTEMS = {
    "frozen": ({"name": "frozen"}, {"default": 5e-3}),
    "unipet": (
        {"name": "unipet", "bottleneck": 64, "inter_bottleneck": 64, "prompt_length": 8},
        {"default": 5e-3, "adapter": 1e-2, "gate": 1e-2, "prompt": 5e-3},
    ),
}


def adapt_and_evaluate(
    cfg: DemoConfig, name: str, backbone: Path, paths: dict[str, Path], out: Path
) -> SystemResult:
    """Stages 3-4 for one system: train (skipped when its model exists), then evaluate."""
    from spkpeft.inference.run_eval import evaluate_run
    from spkpeft.model import load_speaker_model
    from spkpeft.train.trainer import train

    method, lr = SYSTEMS[name]
    run = out / name
    if not (run / "model" / "model.json").is_file():
        train(experiment(cfg, name, method, lr, backbone, paths["adapt"], out))
    written = evaluate_run(
        run,
        trials=[f"test={paths['trials']}"],
        manifest=str(paths["test"]),
        cohort_manifest=str(paths["adapt"]),
    )
    report = json.loads(Path(written["json"]).read_text())
    systems = report["trial_lists"]["test"]["systems"]
    model = load_speaker_model(run)
    n_method = sum(p.numel() for p in model.method.own_parameters().values())
    n_train = sum(p.numel() for p in model.trainable_parameters().values())
    return SystemResult(
        name=name,
        method=method["name"],
        run_dir=str(run),
        method_parameters=n_method,
        trainable_parameters=n_train,
        eer={s: round(100 * m["eer"], 2) for s, m in systems.items()},
        min_dcf={s: round(_dcf(m), 4) for s, m in systems.items()},
    )


def _dcf(metrics: dict) -> float:
    dcf = metrics["min_dcf"]
    return float(dcf.get("0.01", next(iter(dcf.values())))["value"])


@contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Record the wall time of ``stage`` in ``seconds`` and log it when the stage ends."""
    log.info("demo stage %s ...", stage)
    t0 = time.perf_counter()
    yield
    seconds[stage] = round(time.perf_counter() - t0, 1)
    log.info("demo stage %s done in %.1f s", stage, seconds[stage])


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run (or resume) the demo; returns the summary also written to ``OUT/summary.json``."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    with _timed(seconds, "synthesise"):
        paths = synthesise(cfg, out)
    with _timed(seconds, "pretrain"):
        backbone, pretrain_info = pretrain(cfg, out)
    results = []
    for name in SYSTEMS:
        with _timed(seconds, f"adapt+eval {name}"):
            results.append(adapt_and_evaluate(cfg, name, backbone, paths, out))
    frozen, unipet = results
    summary = {
        "config": asdict(cfg),
        "pretraining": pretrain_info,
        "stage_seconds": seconds,  # this invocation's wall time per stage (a resumed stage is near 0)
        "systems": [asdict(r) for r in results],
        "adapted_beats_frozen": unipet.eer["cosine"] < frozen.eer["cosine"],
        "report": str(Path(unipet.run_dir) / "report.md"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    if not summary["adapted_beats_frozen"]:
        log.warning(
            "UniPET did not beat the frozen baseline on cosine EER (%.2f vs %.2f)",
            unipet.eer["cosine"],
            frozen.eer["cosine"],
        )
    return summary
