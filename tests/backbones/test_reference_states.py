"""The family-agnostic layer loop gives the wav2vec2-line families the states of the code before it,
bit for bit (reference written by ``make_reference.py`` with commit 906cc77; see its docstring)."""

from __future__ import annotations

import pytest
import torch
from make_reference import OUT, VARIANTS, states  # pytest puts this test's folder on sys.path
from safetensors.torch import load_file


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    return load_file(str(OUT))


@pytest.fixture
def one_thread():
    """The reference was written with one torch thread; restore the caller's count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_states_equal_the_pre_refactor_code_bit_for_bit(variant, reference, one_thread):
    name, ov = VARIANTS[variant]
    # the attention kernel the reference was computed with: transformers' default, which for WavLM is
    # eager (spkpeft's WavLM SDPA sums in another order; test_sdpa.py compares the two)
    kernel = "eager" if "wavlm" in name else "sdpa"
    for key, got in states(name, {**ov, "attn_implementation": kernel}).items():
        ref = reference[f"{variant}.{key}"]
        diff = float((got - ref).abs().max())
        assert torch.equal(got, ref), f"{variant}.{key}: max abs difference {diff:g}"
