"""Speech backbones through transformers: family table, presets, loading."""
