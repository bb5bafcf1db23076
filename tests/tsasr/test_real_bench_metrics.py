"""The selection measures of benchmarks/tsasr_real.py: the numbers docs/tsasr.md reports rest on them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import tsasr_real as tr  # noqa: E402

from spkpeft.tsasr.evaluate import normalizer  # noqa: E402

TGT, ITF = "the cat sat on the mat", "a dog ran in the park"


def _rows(hyps: list[str]) -> list[dict]:
    return [{"id": f"m{k}", "hyp": h, "target": TGT, "interferer": ITF} for k, h in enumerate(hyps)]


def test_swap_scores_tell_a_model_that_follows_the_enrolment_from_one_that_ignores_it() -> None:
    norm = normalizer("basic")
    with_target = _rows([TGT, TGT, ITF, "the cat sat"])
    follows = _rows([ITF, TGT, ITF, "a dog ran"])  # swapped enrolment: 1st and 4th switch to the interferer
    assert tr.swap_scores(with_target, follows, norm) == {"swap_follows": 0.5, "swap_changed": 0.5}
    assert tr.swap_scores(with_target, with_target, norm) == {"swap_follows": 0.0, "swap_changed": 0.0}
    assert tr.target_closer(with_target, norm) == 0.75
    with pytest.raises(ValueError):
        tr.swap_scores(with_target, follows[:3], norm)  # one output per mixture, in the same order


def test_swapped_manifest_enrols_the_interferer(tmp_path) -> None:  # noqa: ANN001
    from lhotse import CutSet, MonoCut, Recording, SupervisionSegment

    rec = Recording(id="mix0", sources=[], sampling_rate=16000, num_samples=16000, duration=1.0)
    custom = {"enroll_id": "a-1_enrol", "enroll_path": "/x/a-1_enrol.wav", "interferer_id": "b-2_src",
              "interferer_text": ITF}  # fmt: skip
    sup = SupervisionSegment("mix0", "mix0", 0.0, 1.0, speaker="a", text=TGT)
    CutSet.from_cuts(
        [MonoCut("mix0", 0.0, 1.0, 0, recording=rec, supervisions=[sup], custom=custom)]
    ).to_file(tmp_path / "m.jsonl.gz")
    table = {"b-2_enrol": {"path": "/y/b-2_enrol.wav"}}
    (cut,) = CutSet.from_file(tr.swapped_manifest(tmp_path / "m.jsonl.gz", table, tmp_path / "s"))
    assert cut.custom["enroll_id"] == "b-2_enrol" and cut.custom["enroll_path"] == "/y/b-2_enrol.wav"
    assert cut.supervisions[0].text == TGT  # the references stay
    with pytest.raises(KeyError, match="b-2_enrol"):
        tr.swapped_manifest(tmp_path / "m.jsonl.gz", {}, tmp_path / "s2")
