"""The ``data`` section of a training config: which manifest, how to crop, how to augment.

Field names are the YAML keys and the CLI override paths (``data.crop_seconds=3``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SAMPLE_RATE = 16000
"""Every waveform the data layer returns is mono float32 at this rate."""

SHORT_POLICIES = ("repeat", "pad")


@dataclass
class DataConfig:
    """How training batches are made.

    - ``train_manifest``: lhotse CutSet (``*.jsonl.gz``), one cut per utterance with a ``speaker``.
    - ``crop_seconds``: length of the random crop taken from each utterance (paper setups: 2 s, 6 s for
      large-margin fine-tuning).
    - ``short_policy``: utterances shorter than the crop are ``repeat``-ed (tiled) or zero-``pad``-ded
      (``lengths`` in the batch then says how much is real).
    - ``min_duration`` / ``max_duration``: utterances outside the range (seconds, manifest durations)
      are dropped when the dataset is built; the count is logged. ``max_duration`` 0 = no limit.
    - ``speed_perturb``: each example is played at a factor drawn from ``speed_factors``; copies at
      factor k != 1 are new classes (speaker index + k_index * num_speakers), so the head has
      ``len(speed_factors)`` times as many classes (LAP, WeSpeaker).
    - ``noise_manifest`` / ``noise_prob`` / ``noise_snr_*``: additive MUSAN noise, music or babble
      (category from the manifest, see ``spkpeft data prepare musan``); ``babble_speakers`` range.
    - ``rir_manifest`` / ``rir_prob``: reverberation with a random room impulse response.
    - Corpus-free augmentation (``spkpeft.data.simulated_augment``; for small sets without MUSAN/RIR):
      ``sim_rir_prob`` reverberates with one of ``sim_rir_rooms`` simulated shoebox rooms (RT60 range
      ``sim_rir_rt60`` seconds; needs pyroomacoustics, ``pip install 'spkpeft[augment]'``);
      ``sim_noise_prob`` adds white / pink / brown noise at an SNR in ``sim_noise_snr`` dB;
      ``bandlimit_prob`` low-passes at a cutoff in ``bandlimit_hz`` (telephone to wide-band).
    - ``seed``: all randomness (shuffling, crops, augmentation) is a function of (seed, epoch, index).
    """

    train_manifest: str = ""
    crop_seconds: float = 2.0
    short_policy: str = "repeat"
    min_duration: float = 0.5
    max_duration: float = 0.0
    speed_perturb: bool = False
    speed_factors: list[float] = field(default_factory=lambda: [1.0, 0.9, 1.1])
    noise_manifest: str = ""
    noise_prob: float = 0.0
    noise_snr_noise: list[float] = field(default_factory=lambda: [0.0, 15.0])
    noise_snr_music: list[float] = field(default_factory=lambda: [5.0, 15.0])
    noise_snr_babble: list[float] = field(default_factory=lambda: [13.0, 20.0])
    babble_speakers: list[int] = field(default_factory=lambda: [3, 7])
    rir_manifest: str = ""
    rir_prob: float = 0.0
    sim_rir_prob: float = 0.0
    sim_rir_rooms: int = 200
    sim_rir_rt60: list[float] = field(default_factory=lambda: [0.2, 0.7])
    sim_noise_prob: float = 0.0
    sim_noise_snr: list[float] = field(default_factory=lambda: [5.0, 20.0])
    bandlimit_prob: float = 0.0
    bandlimit_hz: list[float] = field(default_factory=lambda: [3400.0, 7000.0])
    num_workers: int = 0
    seed: int = 0
    max_retries: int = 10

    def __post_init__(self) -> None:
        validate(self)


def validate(cfg: DataConfig) -> None:
    """Raise ValueError naming the first bad field and what would be right."""
    if cfg.crop_seconds <= 0:
        raise ValueError(f"data.crop_seconds must be > 0, got {cfg.crop_seconds}")
    if cfg.short_policy not in SHORT_POLICIES:
        raise ValueError(f"data.short_policy must be one of {SHORT_POLICIES}, got {cfg.short_policy!r}")
    for name in ("noise_prob", "rir_prob", "sim_rir_prob", "sim_noise_prob", "bandlimit_prob"):
        p = getattr(cfg, name)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"data.{name} must be in [0, 1], got {p}")
    if cfg.noise_prob > 0 and not cfg.noise_manifest:
        raise ValueError("data.noise_prob > 0 needs data.noise_manifest (spkpeft data prepare musan ...)")
    if cfg.rir_prob > 0 and not cfg.rir_manifest:
        raise ValueError("data.rir_prob > 0 needs data.rir_manifest (spkpeft data prepare rir ...)")
    if not cfg.speed_factors or cfg.speed_factors[0] != 1.0 or any(f <= 0 for f in cfg.speed_factors):
        raise ValueError(f"data.speed_factors must start with 1.0 and be > 0, got {list(cfg.speed_factors)}")
    ranges = ("noise_snr_noise", "noise_snr_music", "noise_snr_babble", "babble_speakers")
    for name in (*ranges, "sim_rir_rt60", "sim_noise_snr", "bandlimit_hz"):
        lo_hi = list(getattr(cfg, name))
        if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
            raise ValueError(f"data.{name} must be [low, high] with low <= high, got {lo_hi}")
    if cfg.sim_rir_rooms < 1:
        raise ValueError(f"data.sim_rir_rooms must be >= 1, got {cfg.sim_rir_rooms}")
    if min(cfg.sim_rir_rt60) <= 0 or min(cfg.bandlimit_hz) <= 0:
        raise ValueError(
            f"data.sim_rir_rt60 {list(cfg.sim_rir_rt60)} and data.bandlimit_hz {list(cfg.bandlimit_hz)} "
            "must be > 0"
        )
    if cfg.max_duration and cfg.max_duration < cfg.min_duration:
        raise ValueError(f"data.max_duration {cfg.max_duration} < data.min_duration {cfg.min_duration}")
    if cfg.num_workers < 0:
        raise ValueError(f"data.num_workers must be >= 0, got {cfg.num_workers}")
