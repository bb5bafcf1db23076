from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spkpeft.data.config import DataConfig
from spkpeft.data.manifest import load_utterances
from spkpeft.data.speakers import SpeakerMap
from spkpeft.data.train_dataset import (
    TrainDataset,
    build_train_loader,
    save_speaker_map,
    set_loader_epoch,
)


def test_batches_have_interface_keys_and_shapes(tiny_manifest):
    cfg = DataConfig(train_manifest=str(tiny_manifest), crop_seconds=1.0)
    loader = build_train_loader(cfg, batch_size=4)
    batch = next(iter(loader))
    assert set(batch) == {"wav", "lengths", "labels"}
    assert batch["wav"].shape == (4, 16000) and batch["wav"].dtype == torch.float32
    assert batch["lengths"].dtype == torch.int64 and batch["labels"].dtype == torch.int64
    assert batch["wav"].abs().max() <= 1.0
    assert set(batch["labels"].tolist()) <= {0, 1, 2}


def test_same_seed_epoch_index_gives_same_crop_and_epoch_changes_it(tiny_manifest):
    cfg = DataConfig(train_manifest=str(tiny_manifest), crop_seconds=1.0, seed=3)
    a, b = TrainDataset(cfg), TrainDataset(cfg)
    idx = 11  # a 3 s utterance: many possible crops
    assert torch.equal(a[idx]["wav"], b[idx]["wav"])
    a.set_epoch(1)
    assert not torch.equal(a[idx]["wav"], b[idx]["wav"])
    b.set_epoch(1)
    assert torch.equal(a[idx]["wav"], b[idx]["wav"])


def test_resumed_loader_matches_uninterrupted_with_workers(tiny_manifest):
    cfg = DataConfig(train_manifest=str(tiny_manifest), crop_seconds=0.5, seed=1)
    l0 = build_train_loader(cfg, batch_size=3)
    set_loader_epoch(l0, 2)
    ref = [b["wav"] for b in l0]
    cfg_w = DataConfig(train_manifest=str(tiny_manifest), crop_seconds=0.5, seed=1, num_workers=2)
    l1 = build_train_loader(cfg_w, batch_size=3)
    set_loader_epoch(l1, 2)
    got = [b["wav"] for b in l1]
    assert len(ref) == len(got) == 4
    assert all(torch.equal(x, y) for x, y in zip(ref, got))


def test_short_policy_repeat_vs_pad(tiny_manifest):
    utts = [u for u in load_utterances(tiny_manifest) if u.duration < 1.0]
    rep = TrainDataset(DataConfig(crop_seconds=2.0, short_policy="repeat"), utterances=utts)[0]
    pad = TrainDataset(DataConfig(crop_seconds=2.0, short_policy="pad"), utterances=utts)[0]
    assert rep["length"] == 32000 and rep["wav"][-1000:].abs().sum() > 0
    assert pad["length"] == int(0.6 * 16000) and pad["wav"][pad["length"] :].abs().sum() == 0
    # repeated audio really is the utterance again
    n = pad["length"]
    assert torch.allclose(rep["wav"][n : 2 * n], rep["wav"][:n])


def test_speed_perturb_triples_classes_and_changes_pitch(tiny_manifest):
    cfg = DataConfig(train_manifest=str(tiny_manifest), crop_seconds=1.0, speed_perturb=True, seed=0)
    ds = TrainDataset(cfg)
    assert ds.num_classes == 9
    seen = {}
    for epoch in range(8):
        ds.set_epoch(epoch)
        it = ds[11]  # spk2, a 200+100 = 300 Hz tone
        seen[it["label"]] = it["wav"].numpy()
    assert {2, 5, 8} <= set(seen)  # spk2 at factors 1.0, 0.9, 1.1
    for label, factor in ((2, 1.0), (5, 0.9), (8, 1.1)):
        spec = np.abs(np.fft.rfft(seen[label]))
        peak_hz = np.argmax(spec) * 16000 / len(seen[label])
        assert peak_hz == pytest.approx(300 * factor, abs=3)


def test_min_duration_filter_and_speaker_map_saved(tiny_manifest, tmp_path, caplog):
    cfg = DataConfig(train_manifest=str(tiny_manifest), min_duration=1.0)
    loader = build_train_loader(cfg, batch_size=2)
    assert len(loader.dataset) == 9
    assert "skipped 3 of 12" in caplog.text
    path = save_speaker_map(loader, tmp_path / "run")
    data = json.loads(path.read_text())
    assert data["speakers"] == ["spk0", "spk1", "spk2"] and data["num_classes"] == 3
    assert SpeakerMap.load(path) == loader.dataset.speaker_map


def test_unreadable_file_is_skipped_and_counted(tiny_manifest, caplog):
    utts = load_utterances(tiny_manifest)
    utts[1].path and __import__("os").remove(utts[1].path)
    ds = TrainDataset(DataConfig(crop_seconds=0.5), utterances=utts)
    item = ds[1]
    assert item["id"] != utts[1].id
    assert ds.skipped == 1 and utts[1].id in caplog.text


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="short_policy"):
        DataConfig(short_policy="loop")
    with pytest.raises(ValueError, match="noise_manifest"):
        DataConfig(noise_prob=0.5)


def test_loader_on_real_speech_folder_corpus(real_speech, tmp_path):
    from spkpeft.data.corpora import prepare

    manifest = prepare("folder", real_speech / "librispeech-test-other", tmp_path)["folder"]
    cfg = DataConfig(train_manifest=str(manifest), crop_seconds=1.0, speed_perturb=True, seed=2)
    loader = build_train_loader(cfg, batch_size=8)
    assert loader.dataset.num_classes == 30  # 10 readers x 3 speeds
    batch = next(iter(loader))
    assert batch["wav"].shape == (8, 16000) and torch.isfinite(batch["wav"]).all()
    assert (batch["wav"].abs().amax(1) > 0.001).all()  # real speech, not silence


def test_data_config_parses_from_yaml_dict():
    from spkpeft.config import ConfigError, parse

    cfg = parse(DataConfig, {"crop_seconds": 3, "speed_perturb": True, "short_policy": "pad"})
    assert cfg.crop_seconds == 3.0 and cfg.speed_perturb and cfg.short_policy == "pad"
    with pytest.raises(ConfigError, match="crop"):
        parse(DataConfig, {"crop": 3})
    with pytest.raises(ValueError, match="short_policy"):
        parse(DataConfig, {"short_policy": "loop"})
