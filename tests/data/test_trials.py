from __future__ import annotations

from collections import Counter

import pytest

from spkpeft.data.make_trials import make_trials
from spkpeft.data.trials import Trial, check_trials, read_cnceleb_trials, read_trials, write_trials


def test_read_voxceleb_cnceleb_and_kaldi_styles(tmp_path):
    vox = tmp_path / "veri_test2.txt"
    vox.write_text(
        "1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav\n"
        "0 id10270/x6uYqmx31kE/00001.wav id10300/ize_eiCFEg0/00003.wav\n"
    )
    t = read_trials(vox)
    assert t[0] == Trial("id10270/x6uYqmx31kE/00001.wav", "id10270/8jEAjG6SegY/00008.wav", 1)
    assert t[1].label == 0
    cnc = tmp_path / "trials.lst"
    cnc.write_text(
        "id00800-enroll test/id00800-singing-01-001.wav 1\nid00800-enroll test/id00801-vlog-01-002.wav 0\n"
    )
    c = read_cnceleb_trials(cnc)
    assert c == [
        Trial("id00800-enroll", "id00800-singing-01-001", 1),
        Trial("id00800-enroll", "id00801-vlog-01-002", 0),
    ]
    kaldi = tmp_path / "kaldi"
    kaldi.write_text("a b target\na c nontarget\n")
    assert [x.label for x in read_trials(kaldi)] == [1, 0]
    bad = tmp_path / "bad"
    bad.write_text("1 a b\n2 a b\n")
    with pytest.raises(ValueError, match=r"bad:2"):
        read_trials(bad)


def test_write_read_roundtrip(tmp_path):
    trials = [Trial("a", "b", 1), Trial("a", "c", 0)]
    write_trials(trials, tmp_path / "sub" / "t.txt")
    assert read_trials(tmp_path / "sub" / "t.txt") == trials


def test_check_trials_lists_first_missing():
    trials = [Trial("a", "b", 1), Trial("a", "x", 0), Trial("y", "b", 0)]
    check_trials(trials[:1], ["a", "b"])
    with pytest.raises(ValueError, match=r"2 utterance.*\['x', 'y'\]"):
        check_trials(trials, ["a", "b"])


def _corpus(n_spk=6, n_utt=5):
    return {f"s{s}": [f"s{s}/u{u}" for u in range(n_utt)] for s in range(n_spk)}


def test_make_trials_counts_labels_no_self_pairs_deterministic():
    spk = _corpus()
    of = {u: s for s, us in spk.items() for u in us}
    trials = make_trials(spk, 40, 60, seed=7)
    assert Counter(t.label for t in trials) == {1: 40, 0: 60}
    for t in trials:
        assert t.enroll != t.test
        assert (of[t.enroll] == of[t.test]) == (t.label == 1)
    assert len({frozenset((t.enroll, t.test)) for t in trials}) == 100
    assert make_trials(spk, 40, 60, seed=7) == trials
    assert make_trials(spk, 40, 60, seed=8) != trials
    # balanced over speakers: 40 targets over 6 speakers -> 6 or 7 each
    per = Counter(of[t.enroll] for t in trials if t.label == 1)
    assert max(per.values()) - min(per.values()) <= 1


def test_make_trials_too_many_pairs_is_an_error():
    with pytest.raises(ValueError, match="only 60 distinct same-speaker"):
        make_trials(_corpus(), 61, 0)
    # all possible target pairs can be asked for
    assert len(make_trials(_corpus(), 60, 0)) == 60


@pytest.mark.parametrize(
    "text,match",
    [
        ("1 a b\n0 a c\n1 d e\nd c\n0 b e\n", r"t.txt:4: this trial has no label.*\[4\]"),
        ("a b\na c\n1 d e\n", r"t.txt:3: this trial has a label"),
    ],
)
def test_a_mixed_labelled_and_unlabelled_list_is_an_error_naming_the_line(tmp_path, text, match):
    (tmp_path / "t.txt").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_trials(tmp_path / "t.txt")


def test_ids_with_spaces_and_percent_round_trip(tmp_path):
    trials = [Trial("spk 1/my file.wav", "spk2/50%\tmix", 1), Trial("a%20b", "ü x", 0)]
    write_trials(trials, tmp_path / "t.txt")
    assert all(len(line.split()) == 3 for line in (tmp_path / "t.txt").read_text().splitlines())
    assert read_trials(tmp_path / "t.txt") == trials
    write_trials([Trial("x y", "z", None)], tmp_path / "u.txt")
    assert read_trials(tmp_path / "u.txt") == [Trial("x y", "z", None)]
