"""``spkpeft demo``: the whole toolkit end to end on a fresh machine, with no download.

1. Data: synthesise disjoint speaker sets (spkpeft.data.synth): *adaptation* and *test* speakers on a
   noisier target domain (written to disk as manifests, plus a trial list); or, with ``audio``, prepare
   the user's folder (one sub-folder per speaker) and split its speakers (:mod:`spkpeft.demo.user_audio`).
2. The backbone (:mod:`spkpeft.demo.choice`): the real pre-trained Whisper tiny.en encoder when its
   package is installed; otherwise a tiny WavLM (random init) pre-trained here on what is said
   (frame-level unit recognition on cleaner synthetic *pre-training* speakers, as real SSL/ASR backbones
   are trained without speaker labels) and saved with ``save_pretrained``.
3. Train two speaker models on the adaptation speakers with the same back-end, loss and schedule on the
   frozen backbone: the *frozen* baseline (back-end only) and *UniPET-SPK*.
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from spkpeft.atomic import replace_dir
from spkpeft.demo.choice import AUTO, CONTENT_WAVLM, PRETRAINED_SIZES, resolve_backbone
from spkpeft.demo.content_pretrain import ContentPretrainConfig

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Sizes of the demo. These defaults are the content pre-trained tiny WavLM path (about 2.5 minutes
    on 2 CPU cores); :func:`demo_config` gives the sizes for a pre-trained backbone.
    ``backbone``: ``tiny-wavlm`` (pre-trained here) or any backbone name/directory (adapted as it is);
    ``audio``: a folder with one sub-folder per speaker instead of synthetic voices.
    ``adapt_steps`` caps the optimiser steps of adaptation (0 = ``adapt_epochs`` decide)."""

    out_dir: str = "demo_out"
    seed: int = 0
    backbone: str = CONTENT_WAVLM
    audio: str | None = None
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
    adapt_steps: int = 0
    crop_seconds: float = 1.0
    batch_size: int = 32
    embed_dim: int = 64
    normalize_layers: bool = False
    margin: float = 0.1
    unipet: dict[str, Any] = field(
        default_factory=lambda: {"bottleneck": 64, "inter_bottleneck": 64, "prompt_length": 8}
    )
    lr: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "frozen": {"default": 5e-3},
            "unipet": {"default": 5e-3, "adapter": 1e-2, "gate": 1e-2, "prompt": 5e-3},
        }
    )


def demo_config(backbone: str = AUTO, **fields: object) -> DemoConfig:
    """The demo's config for ``backbone`` (resolved): the content pre-training defaults of
    :class:`DemoConfig` for ``tiny-wavlm``, :data:`PRETRAINED_SIZES` for every other backbone;
    ``fields`` (``out_dir``, ``seed``, ``audio``, ...) are set last."""
    name = resolve_backbone(backbone)
    cfg = DemoConfig(backbone=name)
    if name != CONTENT_WAVLM:
        cfg = replace(cfg, **PRETRAINED_SIZES)
    return replace(cfg, **fields)


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
    """Stage 1: the adaptation and test corpora and the trial list (skipped when the trial list exists;
    the pre-training speakers are synthesised in memory by :func:`pretrain`)."""
    from spkpeft.data.synth_corpus import SynthConfig, synth_corpus
    from spkpeft.demo.user_audio import write_demo_trials

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
    write_demo_trials(by_spk, cfg.targets, cfg.nontargets, cfg.seed, paths["trials"])
    return paths


def prepare_data(cfg: DemoConfig, out: Path) -> tuple[dict[str, Path], dict[str, int]]:
    """Stage 1: synthetic voices, or the user's ``cfg.audio`` folder; returns the manifest and trial
    paths and the number of adaptation and test speakers."""
    if cfg.audio is None:
        return synthesise(cfg, out), {"adapt": cfg.adapt_speakers, "test": cfg.test_speakers}
    from spkpeft.demo.user_audio import prepare_user_audio

    prepared = prepare_user_audio(cfg.audio, out / "data", cfg.targets, cfg.nontargets, cfg.seed)
    return prepared["paths"], prepared["speakers"]


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

    def write(tmp: Path) -> None:
        backbone.model.save_pretrained(tmp)
        (tmp / "pretraining.json").write_text(json.dumps(info, indent=1) + "\n")

    replace_dir(target, write)
    return target, info


def experiment(
    cfg: DemoConfig, name: str, method: dict, lr: dict, backbone: str | Path, manifest: Path, out: Path
) -> Any:
    """The experiment config of one adapted system (same back-end, loss and schedule for both)."""
    from spkpeft.train.experiment import experiment_from_dict

    return experiment_from_dict(
        {
            "backbone": {"name_or_path": str(backbone)},
            "method": method,
            "backend": {
                "name": "linear",
                "embed_dim": cfg.embed_dim,
                "normalize_layers": cfg.normalize_layers,
            },
            "loss": {"name": "aam", "margin": cfg.margin, "scale": 30.0},
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
                "max_steps": cfg.adapt_steps,
                "log_every": 10,
                "seed": cfg.seed,
                "output_dir": str(out / name),
            },
        }
    )


SYSTEMS = ("frozen", "unipet")


def system(cfg: DemoConfig, name: str) -> tuple[dict, dict[str, float]]:
    """(method section, learning rates) of system ``name`` (one of :data:`SYSTEMS`)."""
    method = {"name": "frozen"} if name == "frozen" else {"name": "unipet", **cfg.unipet}
    return method, cfg.lr[name]


def adapt_and_evaluate(
    cfg: DemoConfig, name: str, backbone: str | Path, paths: dict[str, Path], out: Path
) -> SystemResult:
    """Stages 3-4 for one system: train (skipped when its model exists), then evaluate."""
    from spkpeft.eval.run import evaluate_run
    from spkpeft.model import load_speaker_model
    from spkpeft.train.trainer import train

    method, lr = system(cfg, name)
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


def prepare_backbone(cfg: DemoConfig, out: Path) -> tuple[str | Path, dict[str, float] | None]:
    """Stage 2: the content pre-trained tiny WavLM (:func:`pretrain`) for ``tiny-wavlm``; any other
    backbone as it is (``whisper-tiny.en`` is converted into the cache here on first use). Returns what
    ``backbone.name_or_path`` gets and the pre-training record (None without pre-training)."""
    if cfg.backbone == CONTENT_WAVLM:
        return pretrain(cfg, out)
    from spkpeft.backbones.faster_whisper import resolve_whisper_source

    resolve_whisper_source(cfg.backbone)
    return cfg.backbone, None


def _claim_out_dir(cfg: DemoConfig, out: Path) -> None:
    """Refuse to resume into ``out`` when it holds a demo of another backbone or audio source."""
    mine = {"backbone": cfg.backbone, "audio": cfg.audio and str(Path(cfg.audio).resolve())}
    record = out / "demo_inputs.json"
    if record.is_file():
        theirs = json.loads(record.read_text())
        if theirs != mine:
            theirs_audio, mine_audio = theirs["audio"] or "synthetic", mine["audio"] or "synthetic"
            raise ValueError(
                f"{out} holds a demo of backbone {theirs['backbone']!r} on {theirs_audio} audio, not "
                f"{mine['backbone']!r} on {mine_audio}; pass another --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(mine) + "\n")


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run (or resume) the demo; returns the summary also written to ``OUT/summary.json``."""
    out = Path(cfg.out_dir)
    _claim_out_dir(cfg, out)
    seconds: dict[str, float] = {}
    with _timed(seconds, "synthesise" if cfg.audio is None else "prepare audio"):
        paths, speakers = prepare_data(cfg, out)
    with _timed(seconds, "pretrain" if cfg.backbone == CONTENT_WAVLM else "backbone"):
        backbone, pretrain_info = prepare_backbone(cfg, out)
    results = []
    for name in SYSTEMS:
        with _timed(seconds, f"adapt+eval {name}"):
            results.append(adapt_and_evaluate(cfg, name, backbone, paths, out))
    frozen, unipet = results
    summary = {
        "config": asdict(cfg),
        "backbone": cfg.backbone,
        "audio": "synthetic" if cfg.audio is None else str(cfg.audio),
        "speakers": speakers,
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
