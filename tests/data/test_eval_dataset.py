from __future__ import annotations

import pytest
import torch

from spkpeft.data.audio import AudioError
from spkpeft.data.eval_dataset import LengthBatchSampler, build_eval_loader
from spkpeft.data.manifest import load_utterances


def test_eval_batches_are_whole_padded_utterances_grouped_by_length(tiny_manifest):
    utts = {u.id: u for u in load_utterances(tiny_manifest)}
    loader = build_eval_loader(tiny_manifest, batch_size=3)
    seen = []
    for batch in loader:
        assert set(batch) == {"wav", "lengths", "ids"}
        assert batch["wav"].shape == (len(batch["ids"]), int(batch["lengths"].max()))
        for row, uid in enumerate(batch["ids"]):
            n = int(batch["lengths"][row])
            assert n == pytest.approx(utts[uid].duration * 16000, abs=2)
            assert torch.all(batch["wav"][row, n:] == 0)
        seen += batch["ids"]
        # sorted by length: every batch holds utterances of one duration here (4 durations x 3 speakers)
        assert len({round(utts[i].duration, 2) for i in batch["ids"]}) == 1
    assert sorted(seen) == sorted(utts)


def test_length_sampler_respects_padded_seconds_budget():
    durs = [1.0, 5.0, 1.1, 4.0, 1.2, 0.5]
    batches = list(LengthBatchSampler(durs, batch_size=10, max_batch_seconds=4.0))
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        assert len(b) == 1 or len(b) * max(durs[i] for i in b) <= 4.0
    assert batches[0] == [5, 0, 2]


def test_missing_file_raises_naming_it(tiny_manifest):
    utts = load_utterances(tiny_manifest)
    __import__("os").remove(utts[0].path)
    with pytest.raises(AudioError, match=utts[0].path):
        list(build_eval_loader(utts, batch_size=2))
