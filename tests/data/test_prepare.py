"""Tiny fake corpora in the real on-disk layouts -> manifests: speakers, counts, durations, trials."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from spkpeft.data.corpora import CORPORA, prepare
from spkpeft.data.kaldi_io import export_kaldi, import_kaldi
from spkpeft.data.manifest import cut_speaker, cut_text, load_manifest
from spkpeft.data.trials import read_trials


def _speakers(manifest: Path) -> Counter:
    return Counter(cut_speaker(c) for c in load_manifest(manifest))


def test_voxceleb_layout_ids_splits_and_official_trials(tmp_path, write_wav):
    root = tmp_path / "vox"
    v1 = root / "voxceleb1" / "wav"
    for spk in ("id10270", "id10300", "id10001"):
        for vid in ("5r0dWxy17C8", "x6uYqmx31kE"):
            write_wav(v1 / spk / vid / "00001.wav", 0.4)
    write_wav(v1 / "id10270" / "5r0dWxy17C8" / "00002.wav", 0.7)
    v2 = root / "voxceleb2" / "dev" / "aac"
    write_wav(v2 / "id00012" / "21Uxsk56VDQ" / "00001.wav")
    write_wav(v2 / "id00015" / "0fijmz4vTVU" / "00001.wav")
    (root / "voxceleb1" / "veri_test2.txt").write_text(
        "1 id10270/5r0dWxy17C8/00001.wav id10270/x6uYqmx31kE/00001.wav\n"
        "0 id10270/5r0dWxy17C8/00002.wav id10300/x6uYqmx31kE/00001.wav\n"
    )
    out = prepare("voxceleb", root, tmp_path / "out")
    assert set(out) == {"vox1_dev", "vox1_test", "vox1_all", "vox2_dev", "vox1_O_cleaned"}
    test = load_manifest(out["vox1_test"])
    assert "id10270/5r0dWxy17C8/00001.wav" in test.ids
    assert _speakers(out["vox1_test"]) == {"id10270": 3, "id10300": 2}
    assert _speakers(out["vox1_dev"]) == {"id10001": 2}
    assert _speakers(out["vox2_dev"]) == {"id00012": 1, "id00015": 1}
    assert len(load_manifest(out["vox1_all"])) == 7
    assert test["id10270/5r0dWxy17C8/00002.wav"].duration == pytest.approx(0.7)
    trials = read_trials(out["vox1_O_cleaned"])
    assert [t.label for t in trials] == [1, 0] and {t.enroll for t in trials} <= set(test.ids)


def test_voxceleb_m4a_only_says_how_to_convert(tmp_path, write_wav):
    p = tmp_path / "vox2" / "dev" / "aac" / "id00012" / "21Uxsk56VDQ" / "00001.m4a"
    p.parent.mkdir(parents=True)
    p.write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="m4a.*docs/data.md"):
        prepare("voxceleb", tmp_path / "vox2", tmp_path / "out")
    # after the documented conversion (dev/wav beside dev/aac) the wav files are used
    write_wav(tmp_path / "vox2" / "dev" / "wav" / "id00012" / "21Uxsk56VDQ" / "00001.wav")
    out = prepare("voxceleb", tmp_path / "vox2", tmp_path / "out")
    assert list(load_manifest(out["vox2_dev"]).ids) == ["id00012/21Uxsk56VDQ/00001.wav"]


def test_cnceleb_layout_train_eval_and_trials(tmp_path, write_wav):
    cn1 = tmp_path / "CN-Celeb_flac"
    for spk in ("id00000", "id00001", "id00800"):
        for utt in ("singing-01-001", "speech-02-003"):
            write_wav(cn1 / "data" / spk / f"{utt}.flac")
    (cn1 / "dev").mkdir()
    (cn1 / "dev" / "dev.lst").write_text("id00000\nid00001\n")
    write_wav(cn1 / "eval" / "enroll" / "id00800-enroll.flac", 0.5)
    write_wav(cn1 / "eval" / "test" / "id00800-singing-01-001.flac")
    write_wav(cn1 / "eval" / "test" / "id00801-vlog-01-002.flac")
    (cn1 / "eval" / "lists").mkdir()
    (cn1 / "eval" / "lists" / "trials.lst").write_text(
        "id00800-enroll test/id00800-singing-01-001.wav 1\nid00800-enroll test/id00801-vlog-01-002.wav 0\n"
    )
    cn2 = tmp_path / "CN-Celeb2_flac"
    write_wav(cn2 / "data" / "id10001" / "movie-01-001.flac")
    (cn2 / "spk.lst").write_text("id10001\n")
    out = prepare("cnceleb", tmp_path, tmp_path / "out")
    assert _speakers(out["cnceleb1_dev"]) == {"id00000": 2, "id00001": 2}  # id00800 is eval-only
    assert "id00000/singing-01-001" in load_manifest(out["cnceleb1_dev"]).ids
    assert _speakers(out["cnceleb2"]) == {"id10001": 1}
    assert len(load_manifest(out["cnceleb_train"])) == 5
    ev = load_manifest(out["cnceleb1_eval"])
    assert sorted(ev.ids) == ["id00800-enroll", "id00800-singing-01-001", "id00801-vlog-01-002"]
    assert ev["id00800-enroll"].duration == pytest.approx(0.5)
    trials = read_trials(out["cnceleb1_trials"])
    assert [(t.enroll, t.test, t.label) for t in trials][0] == ("id00800-enroll", "id00800-singing-01-001", 1)


def test_librispeech_via_lhotse_recipe(tmp_path, write_wav):
    ch = tmp_path / "LibriSpeech" / "dev-clean" / "84" / "121123"
    for u in range(2):
        write_wav(ch / f"84-121123-000{u}.flac")
    (ch / "84-121123.trans.txt").write_text("84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS\n")
    out = prepare("librispeech", tmp_path, tmp_path / "out")
    cuts = load_manifest(out["librispeech_dev-clean"])
    assert sorted(cuts.ids) == ["84-121123-0000", "84-121123-0001"]
    assert (
        cut_speaker(cuts["84-121123-0000"]) == "84" and cut_text(cuts["84-121123-0000"]) == "GO DO YOU HEAR"
    )


def test_musan_and_rir_categories(tmp_path, write_wav):
    m = tmp_path / "musan"
    write_wav(m / "music" / "fma" / "music-fma-0000.wav")
    (m / "music" / "fma" / "ANNOTATIONS").write_text("music-fma-0000 pop N someone\n")
    write_wav(m / "speech" / "librivox" / "speech-librivox-0000.wav")
    write_wav(m / "noise" / "free-sound" / "noise-free-sound-0000.wav")
    write_wav(m / "noise" / "free-sound" / "noise-free-sound-0001.wav")
    out = prepare("musan", tmp_path, tmp_path / "out")
    cats = Counter(c.custom["category"] for c in load_manifest(out["musan"]))
    assert cats == {"music": 1, "speech": 1, "noise": 2}
    r = tmp_path / "RIRS_NOISES"
    write_wav(r / "simulated_rirs" / "smallroom" / "Room001" / "Room001-00001.wav", 0.2)
    write_wav(r / "simulated_rirs" / "largeroom" / "Room001" / "Room001-00001.wav", 0.2)
    write_wav(r / "real_rirs_isotropic_noises" / "RVB2014_type1_rir_largeroom1_far_angla.wav", 0.2)
    write_wav(r / "real_rirs_isotropic_noises" / "RVB2014_type1_noise_largeroom1_1.wav", 0.2)
    rir = load_manifest(prepare("rir", tmp_path, tmp_path / "out")["rir"])
    assert len(rir) == 3 and {c.custom["category"] for c in rir} == {"rir"}


def test_folder_corpus_on_real_speech(real_speech, tmp_path, write_wav):
    out = prepare("folder", real_speech / "vctk", tmp_path)
    spk = _speakers(out["folder"])
    assert spk == {f"p22{i}": 10 for i in range(5, 9)}
    cuts = load_manifest(out["folder"])
    assert all(0.5 < c.duration < 20 for c in cuts)
    assert cuts[0].id.startswith("p225/p225_")


def test_kaldi_roundtrip_keeps_ids_speakers_durations(tiny_manifest, tmp_path, write_wav):
    cuts = load_manifest(tiny_manifest)
    export_kaldi(cuts, tmp_path / "kaldi")
    assert (tmp_path / "kaldi" / "wav.scp").is_file() and (tmp_path / "kaldi" / "utt2spk").is_file()
    assert "None" not in (tmp_path / "kaldi" / "text").read_text()  # unknown transcripts stay empty
    back = import_kaldi(tmp_path / "kaldi")
    assert sorted(back.ids) == sorted(cuts.ids)
    for c in cuts:
        assert cut_speaker(back[c.id]) == cut_speaker(c) and cut_text(back[c.id]) is None
        assert back[c.id].duration == pytest.approx(c.duration, abs=1e-3)


def test_kaldi_import_without_segments(tmp_path, write_wav):
    d = tmp_path / "data"
    d.mkdir()
    a, b = write_wav(tmp_path / "a.wav", 0.5, 8000), write_wav(tmp_path / "b.wav", 0.25, 8000)
    (d / "wav.scp").write_text(f"spkA-utt1 {a}\nspkB-utt2 {b}\n")
    (d / "utt2spk").write_text("spkA-utt1 spkA\nspkB-utt2 spkB\n")
    cuts = import_kaldi(d, tmp_path / "m.jsonl.gz")
    assert cut_speaker(cuts["spkA-utt1"]) == "spkA" and cuts["spkB-utt2"].duration == pytest.approx(0.25)
    assert cuts["spkA-utt1"].recording.sampling_rate == 8000
    assert len(load_manifest(tmp_path / "m.jsonl.gz")) == 2


def test_unknown_corpus_lists_valid_ones(tmp_path, write_wav):
    valid = ", ".join(CORPORA.names())
    with pytest.raises(ValueError, match=f"unknown corpus 'timit'; valid corpora: {valid}$"):
        prepare("timit", tmp_path, tmp_path)


# the test that prepares each registered corpus from a fake tree in its real layout (folder: also the
# synthetic trees of test_manifest_ops.py); a new corpus needs a test here
CORPUS_TESTS = {
    "voxceleb": test_voxceleb_layout_ids_splits_and_official_trials,
    "cnceleb": test_cnceleb_layout_train_eval_and_trials,
    "librispeech": test_librispeech_via_lhotse_recipe,
    "musan": test_musan_and_rir_categories,
    "rir": test_musan_and_rir_categories,
    "folder": test_folder_corpus_on_real_speech,
}


def test_every_registered_corpus_is_tested():
    assert sorted(CORPUS_TESTS) == CORPORA.names()
