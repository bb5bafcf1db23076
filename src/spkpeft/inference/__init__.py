"""Export of trained models: a self-contained model directory, ONNX, the model card (docs/inference.md).

Embedding extraction, ``spkpeft eval`` and the scorer live in :mod:`spkpeft.eval`."""
