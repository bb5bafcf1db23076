"""The one-command demo: synthetic corpus -> content pre-trained tiny WavLM -> UniPET-SPK vs frozen."""
