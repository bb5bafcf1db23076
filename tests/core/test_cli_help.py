"""The CLI's help and light commands: fast (no torch import), complete (recipes, methods), distinct."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spkpeft.cli import build_parser, main
from spkpeft.commands.params import METHOD_NAMES
from spkpeft.train.experiment import list_recipes


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def test_help_imports_no_heavy_module():
    code = (
        "import sys; from spkpeft.cli import build_parser; build_parser(); "
        "heavy = ('torch', 'transformers', 'lhotse', 'matplotlib', 'numpy'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_method_help_lists_every_registered_method(capsys):
    from spkpeft.methods import METHODS

    assert sorted(METHOD_NAMES) == sorted(METHODS.names())
    text = " ".join(_help(capsys, "params").split())
    assert all(name in text for name in METHODS.names())


def test_prepare_help_lists_every_registered_corpus(capsys):
    from spkpeft.data.corpora import CORPORA

    text = _help(capsys, "data", "prepare")
    for name in CORPORA.names():
        assert f"  {name}  " in text and CORPORA.entry(name).doc in text


def test_train_list_shows_every_recipe(capsys):
    assert main(["train", "--list"]) == 0
    out = capsys.readouterr().out
    for name in list_recipes():
        assert f"  {name} " in out


def test_train_without_config_says_how_to_list(capsys):
    assert main(["train"]) == 1
    assert "spkpeft train --list" in capsys.readouterr().err


def test_embed_and_embed_file_have_their_own_help(capsys):
    embed = _help(capsys, "embed")
    embed_file = _help(capsys, "embed-file")
    assert "MANIFEST" in embed and "MANIFEST" not in embed_file
    assert ".npy" in embed_file


def test_data_trials_help_explains_every_argument():
    p = build_parser()
    trials = p._subparsers._group_actions[0].choices["data"]._subparsers._group_actions[0].choices["trials"]
    assert trials.description
    assert all(a.help for a in trials._actions)
