"""Back-end + loss head learn: on synthetic hidden states where each speaker adds its own direction to a
few layers (plus noise and variable lengths), a short training run separates held-out utterances."""

import pytest
import torch
from test_backends import TINY

from spkpeft.backends import BACKENDS
from spkpeft.config import parse_named
from spkpeft.losses import LOSSES

L1, D, SPEAKERS, STEPS = 4, 32, 4, 60


def synthetic_batch(directions: torch.Tensor, n: int, gen: torch.Generator):
    """(L+1, n, T, D) states carrying the speaker's direction in layers 1-2, (n, T) mask, (n,) labels."""
    labels = torch.arange(n) % SPEAKERS
    t = 12
    h = torch.randn(L1, n, t, D, generator=gen)
    h[1:3] += 1.5 * directions[labels][None, :, None, :]
    lengths = torch.randint(6, t + 1, (n,), generator=gen)
    mask = torch.arange(t)[None] < lengths[:, None]
    return h * mask[None, :, :, None], mask, labels


@pytest.mark.parametrize(
    ("backend", "loss"),
    [
        ("linear", "aam"),
        ("ecapa_tdnn", "aam_subcenter"),
        ("lap_astp", "aam_intertopk_subcenter"),
        ("mhfa", "am_softmax"),
        ("adapter_mfa", "aam"),
    ],
)
def test_training_separates_speakers(backend, loss):
    gen = torch.Generator().manual_seed(1)
    directions = torch.nn.functional.normalize(torch.randn(SPEAKERS, D, generator=gen), dim=1)
    bcfg = parse_named(BACKENDS, {"name": backend, **TINY[backend]}, "backend")
    model = BACKENDS.build(backend, bcfg, num_states=L1, hidden_size=D)
    extra = {"topk": 2} if loss == "aam_intertopk_subcenter" else {}
    lcfg = parse_named(LOSSES, {"name": loss, "scale": 10.0, **extra}, "loss")
    head = LOSSES.build(loss, lcfg, embed_dim=model.embed_dim, num_classes=SPEAKERS)
    opt = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=5e-3)
    first = None
    for _ in range(STEPS):
        h, mask, labels = synthetic_batch(directions, 16, gen)
        out = head(model(h, mask), labels)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = out.loss.item() if first is None else first
    assert out.loss.item() < 0.5 * first
    model.eval()
    h, mask, labels = synthetic_batch(directions, 32, gen)
    with torch.no_grad():
        acc = (head(model(h, mask), labels).logits.argmax(1) == labels).float().mean().item()
    assert acc >= 0.9, f"{backend}+{loss}: held-out accuracy {acc:.2f} (chance 0.25)"
