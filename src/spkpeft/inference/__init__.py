"""Inference on trained runs: embeddings, run evaluation, scoring state, export (see docs/inference.md)."""
