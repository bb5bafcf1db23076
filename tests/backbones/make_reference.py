"""Write ``data/reference_states.safetensors``: hidden states of the tiny WavLM / HuBERT / wav2vec2 presets
(post-LN and pre-LN variants) with deterministic weights, on a padded batch and on one unpadded row.

The stored file was written by the code before the family-agnostic backbone layer (commit 906cc77):

    git archive 906cc77 src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src OMP_NUM_THREADS=1 python tests/backbones/make_reference.py

``test_reference_states.py`` checks that the current code gives the same states bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from spkpeft.backbones import load_backbone

OUT = Path(__file__).parent / "data" / "reference_states.safetensors"
STABLE = dict(do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
VARIANTS = {
    f"{n}{'-stable' if ov else ''}": (n, ov)
    for n in ("tiny-wavlm", "tiny-hubert", "tiny-wav2vec2")
    for ov in ({}, STABLE)
}
LENGTHS = [8000, 5120, 3333]


def deterministic_(model: torch.nn.Module) -> None:
    """Overwrite every parameter with values from a fixed formula (no RNG involved)."""
    with torch.no_grad():
        for k, (_, p) in enumerate(sorted(model.named_parameters())):
            x = torch.arange(p.numel(), dtype=torch.float64)
            p.copy_((0.2 * torch.sin(0.37 * x + 1.3 * k) + (0.9 if p.dim() == 1 else 0.0)).view(p.shape))


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """A padded (3, 8000) batch of deterministic waveforms and their lengths."""
    lengths = torch.tensor(LENGTHS)
    t = torch.arange(max(LENGTHS), dtype=torch.float64)
    wav = torch.stack(
        [torch.sin(0.011 * (i + 1) * t) + 0.3 * torch.sin(0.37 * t * (i + 2)) for i in range(3)]
    )
    return (wav * (t[None] < lengths[:, None])).float(), lengths


def states(name: str, ov: dict) -> dict[str, torch.Tensor]:
    bb = load_backbone(name, **ov).eval()
    deterministic_(bb.model)
    wav, lengths = batch()
    with torch.no_grad():
        padded = bb(wav, lengths).hidden_states
        alone = bb(wav[1:2, : LENGTHS[1]]).hidden_states
    return {"padded": padded.contiguous(), "alone": alone.contiguous()}


if __name__ == "__main__":
    torch.set_num_threads(1)
    tensors = {f"{v}.{k}": t for v, (n, ov) in VARIANTS.items() for k, t in states(n, ov).items()}
    save_file(tensors, str(OUT))
    print(f"wrote {len(tensors)} tensors to {OUT}")
