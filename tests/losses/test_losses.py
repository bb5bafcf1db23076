"""Losses against hand-computed values: two classes, unit embeddings at known angles to the class
weights, so every cosine and logit follows from a direct formula."""

import math

import pytest
import torch
import torch.nn.functional as F

from spkpeft.config import parse_named
from spkpeft.losses import LOSSES, LossOutput


def build(name: str, embed_dim: int, num_classes: int, **fields):
    cfg = parse_named(LOSSES, {"name": name, **fields}, "loss")
    return LOSSES.build(cfg.name, cfg, embed_dim=embed_dim, num_classes=num_classes)


def unit(angle: float) -> list[float]:
    return [math.cos(angle), math.sin(angle)]


def ce(logits: list[float], target: int) -> float:
    return -logits[target] + math.log(sum(math.exp(v) for v in logits))


def two_class_head(name: str, **fields):
    """Class 0 along x, class 1 along y (weights scaled: normalisation must remove the scale)."""
    head = build(name, 2, 2, **fields)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 0.5]]))
    return head


ALL = ["softmax", "am_softmax", "aam", "aam_subcenter", "aam_intertopk_subcenter"]  # a new loss joins here


def test_the_loss_matrix_covers_every_registered_loss():
    assert sorted(ALL) == LOSSES.names()


@pytest.mark.parametrize("theta", [0.3, 1.2])
def test_aam_matches_formula(theta):
    s, m = 4.0, 0.2  # small scale keeps the loss far from float32 round-off
    head = two_class_head("aam", margin=m, scale=s)
    emb = torch.tensor([unit(theta)]) * 7.0  # norm must not matter
    out = head(emb, torch.tensor([0]))
    assert isinstance(out, LossOutput)
    cos0, cos1 = math.cos(theta), math.cos(math.pi / 2 - theta)
    expected = ce([s * math.cos(theta + m), s * cos1], 0)
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    assert out.logits.tolist()[0] == pytest.approx([s * cos0, s * cos1], rel=1e-5)  # no margin


def test_aam_past_threshold_uses_continuous_fallback():
    # target angle 3.0 rad: theta + m > pi, so WeSpeaker's "cos - (1 + cos(pi - m))" branch applies
    s, m, theta = 30.0, 0.3, 3.0
    head = two_class_head("aam", margin=m, scale=s)
    emb = torch.tensor([unit(theta)])
    out = head(emb, torch.tensor([0]))
    cos0 = math.cos(theta)
    cos1 = math.sin(theta)
    expected = ce([s * (cos0 - 1.0 - math.cos(math.pi - m)), s * cos1], 0)
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    # continuity at the threshold: both branches give -1 at cos = cos(pi - m)
    assert math.cos((math.pi - m) + m) == pytest.approx(math.cos(math.pi - m) - 1 - math.cos(math.pi - m))


def test_easy_margin_skips_negative_cosines():
    s, m, theta = 30.0, 0.2, 2.0  # cos < 0
    head = two_class_head("aam", margin=m, scale=s, easy_margin=True)
    out = head(torch.tensor([unit(theta)]), torch.tensor([0]))
    assert out.loss.item() == pytest.approx(ce([s * math.cos(theta), s * math.sin(theta)], 0), rel=1e-5)


def test_set_margin_zero_gives_plain_scaled_cosine_softmax():
    head = two_class_head("aam")
    head.set_margin(0.0)
    emb = torch.tensor([unit(0.4), unit(1.0)])
    labels = torch.tensor([0, 1])
    out = head(emb, labels)
    assert out.loss.item() == pytest.approx(F.cross_entropy(out.logits, labels).item(), rel=1e-6)


def test_subcenter_takes_max_over_centres():
    # class 0 has centres at angles 0, 1.0, 2.0; class 1 at pi/2 (all three the same)
    s, m, theta = 30.0, 0.2, 0.9
    head = build("aam_subcenter", 2, 2, margin=m, scale=s)
    assert head.weight.shape == (6, 2)
    centres = [unit(0.0), unit(1.0), unit(2.0)] + [unit(math.pi / 2)] * 3
    with torch.no_grad():
        head.weight.copy_(torch.tensor(centres))
    out = head(torch.tensor([unit(theta)]), torch.tensor([0]))
    nearest = abs(theta - 1.0)  # centre 1 of class 0
    expected = ce([s * math.cos(nearest + m), s * math.cos(math.pi / 2 - theta)], 0)
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)


def test_intertopk_penalises_only_the_hardest_non_targets():
    # 4 classes in 3-D; target 0; non-targets at angles 0.5 (hardest), 1.0, 1.4 from the embedding
    s, m, mp = 30.0, 0.2, 0.06
    head = build("aam_intertopk_subcenter", 3, 4, subcenters=1, topk=2, margin=m, scale=s, topk_penalty=mp)
    angles = [0.3, 0.5, 1.0, 1.4]
    with torch.no_grad():
        head.weight.copy_(torch.tensor([unit(a) + [0.0] for a in angles]))
    emb = torch.tensor([[1.0, 0.0, 0.0]])
    out = head(emb, torch.tensor([0]))
    expected_logits = [
        s * math.cos(0.3 + m),
        s * math.cos(0.5 - mp),  # top-1 non-target
        s * math.cos(1.0 - mp),  # top-2 non-target
        s * math.cos(1.4),  # untouched
    ]
    assert out.loss.item() == pytest.approx(ce(expected_logits, 0), rel=1e-5)
    # the penalty follows the margin schedule: half the margin, half the penalty; zero margin, none
    head.set_margin(m / 2)
    assert head.topk_margin == pytest.approx(mp / 2)
    head.set_margin(0.0)
    out0 = head(emb, torch.tensor([0]))
    plain = [s * math.cos(a) for a in angles]
    assert out0.loss.item() == pytest.approx(ce(plain, 0), rel=1e-5)


def test_am_softmax_matches_formula():
    s, m, theta = 30.0, 0.2, 0.7
    head = two_class_head("am_softmax", margin=m, scale=s)
    out = head(torch.tensor([unit(theta)]), torch.tensor([1]))
    cos0, cos1 = math.cos(theta), math.sin(theta)
    assert out.loss.item() == pytest.approx(ce([s * cos0, s * (cos1 - m)], 1), rel=1e-5)
    assert out.logits.tolist()[0] == pytest.approx([s * cos0, s * cos1], rel=1e-5)


def test_softmax_is_linear_cross_entropy():
    head = build("softmax", 3, 4)
    emb, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0])
    out = head(emb, labels)
    logits = emb @ head.classifier.weight.T + head.classifier.bias
    assert torch.allclose(out.logits, logits, atol=1e-6)
    assert out.loss.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    with pytest.raises(ValueError, match="no margin"):
        head.set_margin(0.2)


@pytest.mark.parametrize("name", ALL)
def test_every_loss_trains_and_checks_inputs(name):
    head = build(name, 8, 10)
    emb = torch.randn(6, 8, requires_grad=True)
    labels = torch.randint(0, 10, (6,))
    out = head(emb, labels)
    assert out.logits.shape == (6, 10) and out.loss.dim() == 0
    out.loss.backward()
    assert emb.grad is not None and all(p.grad is not None for p in head.parameters())
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        head(emb, torch.tensor([0, 1, 2, 3, 4, 10]))
    with pytest.raises(ValueError, match=r"embeddings must be \(B, 8\)"):
        head(torch.randn(6, 7), labels)


@pytest.mark.parametrize("name", ["am_softmax", "aam", "aam_intertopk_subcenter"])
def test_margin_losses_compute_in_float32_under_autocast(name):
    head = build(name, 8, 10)
    emb, labels = torch.randn(6, 8), torch.randint(0, 10, (6,))
    ref = head(emb, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(emb.bfloat16(), labels)
    assert out.logits.dtype == torch.float32
    # only the bf16 rounding of the embeddings remains (relative 2^-8), not bf16 margin arithmetic
    assert out.loss.item() == pytest.approx(ref.loss.item(), rel=2e-2)
