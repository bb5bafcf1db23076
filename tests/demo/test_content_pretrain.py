import numpy as np
import torch

from spkpeft.backbones import load_backbone
from spkpeft.data.synth import HOP, synthesize, synthesize_aligned
from spkpeft.data.synth_corpus import speaker_traits
from spkpeft.data.synth_units import INVENTORY
from spkpeft.demo.content_pretrain import (
    NUM_CLASSES,
    ContentPretrainConfig,
    aligned_corpus,
    frame_targets,
    pretrain_content,
)


def test_aligned_synthesis_is_the_same_audio_with_one_label_per_hop():
    traits = speaker_traits(0, 3)
    wav = synthesize(traits, "kasi tomu", np.random.default_rng(5))
    wav2, labels = synthesize_aligned(traits, "kasi tomu", np.random.default_rng(5))
    assert np.array_equal(wav, wav2)
    assert len(labels) * HOP == len(wav)
    present = {INVENTORY[k - 1] for k in set(labels.tolist()) if k > 0}
    assert present == set("kasitomu")  # every spoken unit labelled, nothing else
    assert labels[0] == 0 and labels[-1] == 0  # leading and trailing pauses are silence


def test_frame_targets_take_the_label_at_each_frame_centre():
    labels = np.arange(100)  # 8 ms steps
    got = frame_targets(labels, frames=3)
    assert got.tolist() == [200 // HOP, (320 + 200) // HOP, (640 + 200) // HOP]
    assert frame_targets(labels, frames=1000)[-1] == 99  # clipped to the last label


def test_content_pretraining_learns_units_and_leaves_backbone_frozen():
    items = aligned_corpus(range(3), 2, seed=0, difficulty=0.1, seconds=(1.0, 1.5))
    torch.manual_seed(0)
    bb = load_backbone("tiny-wavlm")
    before = [p.detach().clone() for p in bb.parameters()]
    cfg = ContentPretrainConfig(steps=40, batch_size=4, crop_seconds=1.0, lr=3e-3, warmup=5)
    info = pretrain_content(bb, items, cfg)
    assert info["frame_accuracy"] > 1.5 / NUM_CLASSES  # well above chance after 40 steps
    assert info["loss"] < np.log(NUM_CLASSES)  # below the uniform-guess loss
    changed = [not torch.equal(a, b) for a, b in zip(before, bb.parameters())]
    assert all(changed[:3]), "the CNN must be trained too"
    assert not any(p.requires_grad for p in bb.parameters()) and not bb.training
