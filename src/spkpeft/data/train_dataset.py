"""Training data: random fixed-length crops of utterances with speaker class labels.

Batch dict (docs/INTERFACES.md): ``wav`` (B, S) float32, ``lengths`` (B,) int64, ``labels`` (B,) int64.
Every random choice of example ``index`` in epoch ``epoch`` is drawn from
``numpy.random.default_rng((seed, epoch, index))``, and the shuffle order from ``(seed, epoch)``, so a
resumed run (``set_epoch``) sees exactly the same crops as an uninterrupted one, whatever the number
of workers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from spkpeft.data.audio import AudioError
from spkpeft.data.augment import NoiseAugmenter, RirAugmenter, fit_length
from spkpeft.data.config import SAMPLE_RATE, DataConfig
from spkpeft.data.manifest import Utterance, load_utterances
from spkpeft.data.simulated_augment import SimulatedRooms, add_coloured_noise, band_limit
from spkpeft.data.speakers import SpeakerMap

log = logging.getLogger(__name__)


def filter_by_duration(utts: Sequence[Utterance], cfg: DataConfig, where: str = "") -> list[Utterance]:
    """Drop utterances outside [min_duration, max_duration] and log how many went."""
    keep = [
        u
        for u in utts
        if u.duration >= cfg.min_duration and (not cfg.max_duration or u.duration <= cfg.max_duration)
    ]
    if len(keep) < len(utts):
        log.warning(
            "%s: skipped %d of %d utterances outside %.2f-%s s",
            where or "manifest",
            len(utts) - len(keep),
            len(utts),
            cfg.min_duration,
            cfg.max_duration or "inf",
        )
    if not keep:
        raise ValueError(f"{where or 'manifest'}: no utterance is at least {cfg.min_duration} s long")
    return keep


class TrainDataset(Dataset):
    """Map-style dataset of crops: item ``i`` -> {"wav" (S,), "length", "label", "id"}.

    Build from ``cfg.train_manifest`` or pass ``utterances``. ``speaker_map`` defaults to the sorted
    speakers of the manifest (with ``cfg.speed_factors`` when ``cfg.speed_perturb``); pass the saved
    one when resuming so class indices do not move.
    """

    def __init__(
        self,
        cfg: DataConfig,
        speaker_map: SpeakerMap | None = None,
        utterances: Sequence[Utterance] | None = None,
    ) -> None:
        self.cfg = cfg
        where = cfg.train_manifest or "utterances"
        if utterances is None:
            if not cfg.train_manifest:
                raise ValueError(
                    "data.train_manifest is empty: give a CutSet file (spkpeft data prepare ...)"
                )
            utterances = load_utterances(cfg.train_manifest)
        self.utts = filter_by_duration(utterances, cfg, where)
        factors = cfg.speed_factors if cfg.speed_perturb else [1.0]
        self.speaker_map = speaker_map or SpeakerMap.from_speakers((u.speaker for u in self.utts), factors)
        unknown = sorted({u.speaker for u in self.utts} - set(self.speaker_map.speakers))
        if unknown:
            raise ValueError(f"{where}: speakers not in the speaker map: {unknown[:5]}")
        self.num_samples = int(round(cfg.crop_seconds * SAMPLE_RATE))
        self.noise = (
            NoiseAugmenter(load_utterances(cfg.noise_manifest, False), cfg) if cfg.noise_prob else None
        )
        self.rir = RirAugmenter(load_utterances(cfg.rir_manifest, False), cfg) if cfg.rir_prob else None
        self.rooms = (
            SimulatedRooms(cfg.sim_rir_rooms, cfg.seed, tuple(cfg.sim_rir_rt60)) if cfg.sim_rir_prob else None
        )
        self.epoch = 0
        self.skipped = 0

    @property
    def num_classes(self) -> int:
        return self.speaker_map.num_classes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng((self.cfg.seed, self.epoch, int(index)))
        i = int(index)
        for _ in range(self.cfg.max_retries + 1):
            try:
                return self._example(self.utts[i], rng)
            except AudioError as e:
                self.skipped += 1
                log.warning(
                    "skipped unreadable utterance %s (%d skipped in this worker): %s",
                    self.utts[i].id,
                    self.skipped,
                    e,
                )
                i = int(rng.integers(len(self.utts)))
        raise RuntimeError(
            f"{self.cfg.max_retries + 1} unreadable utterances in a row; last: {self.utts[i].path}"
        )

    def _example(self, utt: Utterance, rng: np.random.Generator) -> dict:
        factors = self.speaker_map.speed_factors
        k = int(rng.integers(len(factors))) if len(factors) > 1 else 0
        wav, length = self._crop(utt, factors[k], rng)
        if self.rir is not None and rng.random() < self.cfg.rir_prob:
            wav[:length] = self.rir(wav[:length], rng)
        if self.rooms is not None and rng.random() < self.cfg.sim_rir_prob:
            wav[:length] = self.rooms(wav[:length], rng)
        if self.noise is not None and rng.random() < self.cfg.noise_prob:
            wav[:length] = self.noise(wav[:length], rng)
        if self.cfg.sim_noise_prob and rng.random() < self.cfg.sim_noise_prob:
            wav[:length] = add_coloured_noise(wav[:length], tuple(self.cfg.sim_noise_snr), rng)
        if self.cfg.bandlimit_prob and rng.random() < self.cfg.bandlimit_prob:
            wav[:length] = band_limit(wav[:length], tuple(self.cfg.bandlimit_hz), rng)
        return {
            "wav": torch.from_numpy(wav),
            "length": length,
            "label": self.speaker_map.label(utt.speaker, k),
            "id": utt.id,
        }

    def _crop(self, utt: Utterance, speed: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """A random window of ``crop_seconds`` (after speed change) -> ((S,) float32, real length)."""
        n = self.num_samples
        src = self.cfg.crop_seconds * speed  # seconds of source audio that play for crop_seconds
        offset = rng.uniform(0.0, utt.duration - src) if utt.duration > src else 0.0
        x = utt.load(offset, min(src, utt.duration), speed=speed)
        if len(x) < SAMPLE_RATE * 0.01:
            raise AudioError(f"utterance {utt.id} has only {len(x)} samples: {utt.path}")
        if len(x) >= n or self.cfg.short_policy == "repeat":
            return np.ascontiguousarray(fit_length(x, n, policy="repeat"), dtype=np.float32), n
        return fit_length(x, n, policy="pad").astype(np.float32), len(x)


def collate_train(items: list[dict]) -> dict[str, torch.Tensor]:
    """Examples -> {"wav" (B, S) float32, "lengths" (B,) int64, "labels" (B,) int64}."""
    return {
        "wav": torch.stack([it["wav"] for it in items]),
        "lengths": torch.tensor([it["length"] for it in items], dtype=torch.int64),
        "labels": torch.tensor([it["label"] for it in items], dtype=torch.int64),
    }


class EpochShuffleSampler(Sampler[int]):
    """A permutation of range(n) drawn from (seed, epoch); ``set_epoch`` before each epoch."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(np.random.default_rng((self.seed, self.epoch)).permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


def build_train_loader(
    cfg: DataConfig,
    batch_size: int,
    speaker_map: SpeakerMap | None = None,
    drop_last: bool = True,
    utterances: Sequence[Utterance] | None = None,
) -> DataLoader:
    """A DataLoader of training batches; call :func:`set_loader_epoch` before each epoch."""
    ds = TrainDataset(cfg, speaker_map, utterances)
    if drop_last and len(ds) < batch_size:
        raise ValueError(
            f"{len(ds)} utterances < batch size {batch_size} with drop_last: lower the batch size"
        )
    return DataLoader(
        ds,
        batch_size=batch_size,
        sampler=EpochShuffleSampler(len(ds), cfg.seed),
        collate_fn=collate_train,
        num_workers=cfg.num_workers,
        drop_last=drop_last,
        persistent_workers=False,  # workers must see set_epoch(), so they are re-created each epoch
    )


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Set the epoch on the loader's dataset and sampler (crops and order depend on it)."""
    for obj in (loader.dataset, loader.sampler, getattr(loader.batch_sampler, "sampler", None)):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)


def save_speaker_map(loader_or_dataset: DataLoader | TrainDataset, run_dir: str | Path) -> Path:
    """Write the dataset's speaker map to ``run_dir/speakers.json``."""
    ds = getattr(loader_or_dataset, "dataset", loader_or_dataset)
    path = Path(run_dir) / "speakers.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.speaker_map.save(path)
    return path
