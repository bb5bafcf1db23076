"""Embedding sources, mixture simulation, the synthetic unit corpus and WER scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spkpeft.tsasr.embeddings import CallableEmbeddings, FileEmbeddings, MelStatsEmbedder, save_embeddings
from spkpeft.tsasr.evaluate import normalizer, wer_scores
from spkpeft.tsasr.simulate import mix_pair
from spkpeft.tsasr.units import Voice, synth_utterance


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_file_embeddings_round_trip(tmp_path, suffix: str) -> None:  # noqa: ANN001
    table = {"u1": np.arange(4, dtype=np.float32), "u2": np.ones(4, dtype=np.float32)}
    save_embeddings(table, tmp_path / f"e{suffix}")
    src = FileEmbeddings(tmp_path / f"e{suffix}")
    assert src.dim == 4
    np.testing.assert_array_equal(src.get("u1"), table["u1"])
    with pytest.raises(KeyError, match="'nope'"):
        src.get("nope")


def test_file_embeddings_reject_bad_files(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(FileNotFoundError):
        FileEmbeddings(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=r"\.npy is not read"):
        save_embeddings({"a": np.zeros(3)}, tmp_path / "e.npy")
    save_embeddings({"a": np.zeros(3), "b": np.zeros(4)}, tmp_path / "mixed.npz")
    with pytest.raises(ValueError, match="one size"):
        FileEmbeddings(tmp_path / "mixed.npz")


def test_pickled_embedding_files_are_never_loaded(tmp_path, code_payload) -> None:  # noqa: ANN001
    payload, marker = code_payload
    np.save(tmp_path / "e.npy", np.array({"u1": payload}, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"\.npy is not read.*can run code"):
        FileEmbeddings(tmp_path / "e.npy")
    np.savez(tmp_path / "e.npz", u1=np.array([payload], dtype=object))
    with pytest.raises(ValueError, match="plain float arrays"):
        FileEmbeddings(tmp_path / "e.npz")
    assert not marker.exists()


def test_callable_embeddings_cache_and_check_dims() -> None:
    calls = []

    def embed(wav: np.ndarray, sr: int) -> np.ndarray:
        calls.append(sr)
        return np.full(3 if len(calls) < 3 else 5, wav.mean())

    src = CallableEmbeddings(embed)
    load = lambda: (np.ones(100, dtype=np.float32), 16000)  # noqa: E731
    a = src.get("x", load)
    assert src.get("x", load) is a and len(calls) == 1 and src.dim == 3
    src.get("y", load)
    with pytest.raises(ValueError, match="5 dims"):
        src.get("z", load)


def test_melstats_embedding_is_speaker_dependent() -> None:
    rng = np.random.default_rng(0)
    emb = MelStatsEmbedder()
    v1, v2 = Voice(110.0, 0.9, -6.0), Voice(230.0, 1.15, -6.0)
    a1, a2 = (emb(synth_utterance(t, v1, rng), 16000) for t in ("a e s", "mo r"))
    b1 = emb(synth_utterance("a e s", v2, rng), 16000)
    assert a1.shape == (emb.dim,) and abs(np.linalg.norm(a1) - 1) < 1e-5
    assert a1 @ a2 > a1 @ b1  # same voice, different words > same words, different voice


def test_mix_pair_levels_and_overlap() -> None:
    rng = np.random.default_rng(0)
    t, i = rng.standard_normal(1000).astype(np.float32) * 0.1, rng.standard_normal(600).astype(np.float32)
    mix, off = mix_pair(t, i, snr_db=6.0, overlap=0.5, target_first=True)
    assert off == 0 and len(mix) == 1000 - 300 + 600
    interf = mix[:1000] - t
    interf = np.concatenate([interf, mix[1000:]])[700:]
    ratio = 10 * np.log10(np.mean(t**2) / np.mean(interf**2))
    assert abs(ratio - 6.0) < 0.05
    _, off2 = mix_pair(t, i, 0.0, 1.0, target_first=False)
    assert off2 == 600 - 600  # full overlap of the shorter: the second starts where the first ends minus it


def test_simulated_mixtures_have_enrolment_of_target(mixtures) -> None:  # noqa: ANN001
    from lhotse import CutSet

    cuts = list(CutSet.from_file(mixtures))
    assert len(cuts) > 0
    for c in cuts:
        cu = c.custom
        assert cu["enroll_id"] != cu["target_id"]
        assert cu["enroll_id"].split("-")[0] == c.supervisions[0].speaker != cu["interferer_speaker"]
        assert -3 <= cu["snr_db"] <= 3 and 0.5 <= cu["overlap"] <= 1.0
        wav, sr = sf.read(cu["enroll_path"])
        assert sr == 16000 and len(wav) > 0
        assert c.duration <= 1.8


def test_simulation_is_seeded(unit_corpus, tmp_path) -> None:  # noqa: ANN001
    from spkpeft.tsasr.simulate import SimulateConfig, simulate_mixtures

    a = simulate_mixtures(unit_corpus, tmp_path / "a", SimulateConfig(mixtures=4, seed=5))
    b = simulate_mixtures(unit_corpus, tmp_path / "b", SimulateConfig(mixtures=4, seed=5))
    assert [c.id for c in a] == [c.id for c in b]
    np.testing.assert_array_equal(a[0].load_audio(), b[0].load_audio())


def test_wer_scores_corpus_and_mean() -> None:
    norm = normalizer("none")
    s = wer_scores(["a b c", "d e"], ["a x c y", "d e"], norm)
    assert s["wer"] == pytest.approx(2 / 5)  # 1 sub + 1 ins over 5 reference words
    assert s["mean_utt_wer"] == pytest.approx((2 / 3 + 0) / 2)
    assert s["median_utt_wer"] == pytest.approx((2 / 3 + 0) / 2)
    looping = wer_scores(["a b", "c d", "e f"], ["a b", "c d", "e f " + "x " * 40], norm)
    assert looping["median_utt_wer"] == 0 and looping["mean_utt_wer"] > 6  # one runaway output
    assert s["substitutions"] == 1 and s["insertions"] == 1
    eng = normalizer("english")
    assert wer_scores(["Hello, World!"], ["hello world"], eng)["wer"] == 0
    with pytest.raises(ValueError, match="normalizer"):
        normalizer("fancy")


def test_simulate_accepts_ids_with_slashes(unit_corpus, tmp_path) -> None:  # noqa: ANN001
    from lhotse import CutSet

    from spkpeft.tsasr.simulate import SimulateConfig, simulate_mixtures

    nested = CutSet.from_cuts(
        c.with_id(f"{c.supervisions[0].speaker}/{c.id}") for c in unit_corpus
    )  # as data synth
    mixed = simulate_mixtures(nested, tmp_path, SimulateConfig(mixtures=4, seed=1))
    assert len(mixed) == 4
    for c in mixed:
        assert "/" not in c.id and "/" in c.custom["target_id"] and "/" in c.custom["enroll_id"]
        assert Path(c.recording.sources[0].source).is_file() and Path(c.custom["enroll_path"]).is_file()


def test_given_enrolments_pair_each_source_with_its_own(unit_corpus, tmp_path) -> None:  # noqa: ANN001
    """With ``enrolments`` (source id -> enrolment cut) a speaker needs one source cut, and the enrolment
    of a mixture is exactly the one given for its target (e.g. another stretch of the same recording)."""
    from lhotse import CutSet

    from spkpeft.tsasr.simulate import SimulateConfig, simulate_mixtures

    by_spk: dict[str, list] = {}
    for c in unit_corpus:
        by_spk.setdefault(c.supervisions[0].speaker, []).append(c)
    sources = [v[0] for v in by_spk.values()]  # one utterance per speaker: impossible without enrolments
    enrol = {v[0].id: v[1] for v in by_spk.values()}
    with pytest.raises(ValueError, match="need >= 2 speakers"):
        simulate_mixtures(CutSet.from_cuts(sources), tmp_path / "none", SimulateConfig(mixtures=4))
    mixed = simulate_mixtures(CutSet.from_cuts(sources), tmp_path / "e", SimulateConfig(mixtures=6), enrol)
    assert len(mixed) == 6
    for c in mixed:
        assert c.custom["enroll_id"] == enrol[c.custom["target_id"]].id
    with pytest.raises(KeyError, match="no enrolment cut"):
        simulate_mixtures(CutSet.from_cuts(sources), tmp_path / "k", SimulateConfig(mixtures=2), {})


def test_cut_stretches_sources_then_enrolment() -> None:
    from spkpeft.tsasr.stretches import StretchConfig, cut_stretches

    wav = np.arange(16000 * 10, dtype=np.float32)
    cfg = StretchConfig(src_seconds=3.0, gap_seconds=0.5, sources=2, enrol_seconds=4.0)
    parts = cut_stretches(wav, cfg)
    assert sorted(parts) == ["enrol", "src", "src2"]
    assert parts["src"][0] == 0 and len(parts["src"]) == 48000
    assert parts["src2"][0] == 56000 and len(parts["src2"]) == 48000  # after a 0.5 s gap
    assert parts["enrol"][0] == 112000 and len(parts["enrol"]) == 48000  # the 3 s left (< 4 s)
    assert not set(parts["enrol"]) & (set(parts["src"]) | set(parts["src2"]))  # never the mixed audio
    assert cut_stretches(wav[: 16000 * 8], cfg) is None  # 1 s left for the enrolment: < 2 s


def test_read_audio_is_the_shared_16k_reader(tmp_path) -> None:  # noqa: ANN001
    from spkpeft.data.audio import AudioError
    from spkpeft.tsasr.data import read_audio

    sf.write(tmp_path / "a8k.wav", np.zeros((8000, 2), dtype=np.float32), 8000)  # 1 s, stereo, 8 kHz
    wav, sr = read_audio(tmp_path / "a8k.wav")
    assert sr == 16000 and wav.shape == (16000,)
    sf.write(tmp_path / "nan.wav", np.full(800, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav"):
        read_audio(tmp_path / "nan.wav")


def _stretch_table(tmp_path: Path) -> dict[str, dict]:
    """Two training speakers with a source and an enrolment each, a held-out one, 1 s tones."""
    table = {}
    for spk, split, hz in (("a", "train", 200.0), ("b", "train", 300.0), ("c", "heldout", 250.0)):
        for kind in ("src", "enrol"):
            sid = f"{spk}0_{kind}"
            t = np.arange(16000) / 16000
            sf.write(tmp_path / f"{sid}.wav", 0.5 * np.sin(2 * np.pi * hz * t), 16000, subtype="FLOAT")
            table[sid] = dict(
                speaker=spk, kind=kind, split=split, utt=f"{spk}0", path=str(tmp_path / f"{sid}.wav")
            )
            if kind == "src":
                table[sid]["text"] = f"words of {spk}"
    return table


def test_speed_copies_are_new_speakers_with_the_same_words(tmp_path) -> None:  # noqa: ANN001
    from spkpeft.tsasr.stretches import kin_of, sources_and_enrolments, speed_copies

    table = _stretch_table(tmp_path)
    new = speed_copies(table, [1.0, 0.8, 1.25], tmp_path / "copies")
    assert sorted(new) == ["a0@0.8_enrol", "a0@0.8_src", "a0@1.25_enrol", "a0@1.25_src",
                           "b0@0.8_enrol", "b0@0.8_src", "b0@1.25_enrol", "b0@1.25_src"]  # fmt: skip
    slow, fast = new["a0@0.8_src"], new["a0@1.25_src"]
    assert (slow["speaker"], slow["text"], slow["copy_of"], slow["speed"]) == (
        "a@0.8",
        "words of a",
        "a0_src",
        0.8,
    )
    # played slower: 1 / 0.8 as long and the 200 Hz tone falls to 160 Hz (faster: 0.8 s, 250 Hz)
    for row, seconds, hz in ((slow, 1.25, 160), (fast, 0.8, 250)):
        x, sr = sf.read(row["path"])
        assert sr == 16000 and abs(len(x) / sr - seconds) < 0.01
        assert abs(np.argmax(np.abs(np.fft.rfft(x))) * sr / len(x) - hz) < 2
    table.update(new)
    kin = kin_of(table)
    assert kin["a@0.8"] == kin["a@1.25"] == kin["a"] == "a" and kin["b@0.8"] == "b"
    src, enrol = sources_and_enrolments(table, "train")
    assert len(src) == 6 and enrol["a0@1.25_src"].id == "a0@1.25_enrol"  # a copy enrols with its own copy
    with pytest.raises(ValueError, match=r"\[0\.1\]"):
        speed_copies(table, [0.1], tmp_path / "bad")


def test_kin_keeps_a_voice_from_interfering_with_its_own_copy(tmp_path) -> None:  # noqa: ANN001
    from lhotse import CutSet

    from spkpeft.tsasr.simulate import SimulateConfig, simulate_mixtures
    from spkpeft.tsasr.stretches import kin_of, sources_and_enrolments, speed_copies

    table = _stretch_table(tmp_path)
    table.update(speed_copies(table, [0.9, 1.1], tmp_path / "copies"))
    src, enrol = sources_and_enrolments(table, "train")
    cfg = SimulateConfig(mixtures=40, overlap=(0.0, 0.0), seed=3)
    mixed = simulate_mixtures(src, tmp_path / "kin", cfg, enrol, kin=kin_of(table))
    pairs = {(c.supervisions[0].speaker, c.custom["interferer_speaker"]) for c in mixed}
    assert all(t.split("@")[0] != i.split("@")[0] for t, i in pairs)
    assert len({i for _, i in pairs}) == 6  # every voice of the other person interferes
    # without kin, 40 draws over 6 voices pair a voice with a copy of itself (the same words)
    free = simulate_mixtures(src, tmp_path / "free", cfg, enrol)
    assert any(
        c.supervisions[0].speaker.split("@")[0] == c.custom["interferer_speaker"].split("@")[0] for c in free
    )
    with pytest.raises(KeyError, match="no group"):
        simulate_mixtures(src, tmp_path / "k2", cfg, enrol, kin={"a": "a"})
    with pytest.raises(ValueError, match=">= 2 kin groups"):
        simulate_mixtures(src, tmp_path / "k3", cfg, enrol, kin=dict.fromkeys(kin_of(table), "x"))
    assert isinstance(mixed, CutSet)


def test_both_targets_writes_each_mixture_once_per_speaker(tmp_path) -> None:  # noqa: ANN001
    from spkpeft.tsasr.data import MixtureData
    from spkpeft.tsasr.embeddings import CallableEmbeddings
    from spkpeft.tsasr.simulate import SimulateConfig, simulate_mixtures
    from spkpeft.tsasr.stretches import sources_and_enrolments

    table = _stretch_table(tmp_path)
    table["a0_src"]["text"], table["b0_src"]["text"] = "words of a", "words of b"
    src, enrol = sources_and_enrolments(table, "train")
    for overlap in ((0.0, 0.0), (0.3, 0.6)):
        cfg = SimulateConfig(mixtures=6, overlap=overlap, seed=2, both_targets=True)
        cuts = list(simulate_mixtures(src, tmp_path / f"both{overlap[0]}", cfg, enrol))
        assert len(cuts) == 12
        for a, b in zip(cuts[::2], cuts[1::2], strict=True):
            assert a.recording.id == b.recording.id == a.id  # one wav, the first cut keeps the old id
            sa, sb = a.supervisions[0], b.supervisions[0]
            assert {sa.speaker, sb.speaker} == {"a", "b"} and sa.text == b.custom["interferer_text"]
            assert (
                b.custom["enroll_id"] == f"{sb.speaker}0_enrol" and a.custom["snr_db"] == -b.custom["snr_db"]
            )
            # each target offset is where that speaker's tone really starts in the mixture
            x = a.load_audio()[0]
            for c in (a, b):
                hz = 200.0 if c.supervisions[0].speaker == "a" else 300.0
                i0 = int(round(c.custom["target_offset"] * 16000))
                seg = x[i0 : i0 + 1600] if c.custom["target_offset"] > 0 else x[:1600]
                peak = np.argmax(np.abs(np.fft.rfft(seg))) * 16000 / len(seg)
                assert abs(peak - hz) <= 10 or overlap[0] > 0, (c.id, peak)
                assert 0 <= i0 <= len(x) - 16000 + 1
    pairs = MixtureData(
        tmp_path / "both0.0" / "mixtures.jsonl.gz", CallableEmbeddings(lambda w, sr: w[:4])
    ).target_pairs()
    assert pairs == [[2 * k, 2 * k + 1] for k in range(6)]
    single = simulate_mixtures(src, tmp_path / "one", SimulateConfig(mixtures=4, seed=2), enrol)
    with pytest.raises(ValueError, match="recording mix000000_.* has 1 cut.*--both-targets"):
        MixtureData(
            tmp_path / "one" / "mixtures.jsonl.gz", CallableEmbeddings(lambda w, sr: w[:4])
        ).target_pairs()
    assert len(single) == 4


def test_save_embeddings_is_atomic(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    path = tmp_path / "e.npz"
    save_embeddings({"u1": np.ones(3, dtype=np.float32)}, path)

    def broken(file, **kw):  # noqa: ANN001, ANN003, ANN202
        assert str(file).endswith(".npz")  # the temporary name keeps the suffix np.savez needs
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        save_embeddings({"u2": np.zeros(3, dtype=np.float32)}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.npz"]  # no temporary left
    np.testing.assert_array_equal(FileEmbeddings(path).get("u1"), np.ones(3))  # the earlier table stays
