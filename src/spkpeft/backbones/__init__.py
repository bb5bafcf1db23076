"""Speech backbones through transformers: family table, presets, loading, the layer-loop wrapper."""

from spkpeft.backbones.backbone import (
    BackboneHook,
    BackboneOutput,
    Frames,
    SpeechBackbone,
    load_backbone,
)

__all__ = ["BackboneHook", "BackboneOutput", "Frames", "SpeechBackbone", "load_backbone"]
