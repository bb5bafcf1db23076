"""Speech backbones through transformers: family table, presets, loading, the layer-loop wrapper.

The names below are imported lazily, so ``spkpeft.backbones.config`` (read by config parsing) stays light.
"""

__all__ = ["BackboneHook", "BackboneOutput", "Frames", "SpeechBackbone", "load_backbone"]


def __getattr__(name: str):  # noqa: ANN202  (lazy: transformers' model code loads only when used)
    if name in __all__:
        from spkpeft.backbones import backbone

        return getattr(backbone, name)
    raise AttributeError(f"module 'spkpeft.backbones' has no attribute {name!r}")
