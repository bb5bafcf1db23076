"""Shared fixtures: offline HF, deterministic torch, real-speech-mini location, small threads."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

REAL_SPEECH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-speech-mini"


def _check_padding_exact(backbone, lengths: torch.Tensor, frames: list[int], atol: float) -> None:  # noqa: ANN001
    """A padded batch of random clips (garbage past the last row's end) gives every row the states of
    the row run alone, zero past its end, with ``frames`` real frames per row."""
    s = int(lengths.max())
    wav = torch.randn(len(lengths), s) * (torch.arange(s)[None] < lengths[:, None])
    wav[-1, int(lengths[-1]) :] = 5.0  # garbage past a row's end must not matter
    with torch.no_grad():
        out = backbone(wav, lengths)
        assert out.mask.sum(1).tolist() == frames == backbone.frame_lengths(lengths).tolist()
        for i, n in enumerate(lengths.tolist()):
            alone = backbone(wav[i : i + 1, :n]).hidden_states[:, 0]
            t = alone.shape[1]
            torch.testing.assert_close(out.hidden_states[:, i, :t], alone, atol=atol, rtol=0)
            assert out.hidden_states[:, i, t:].abs().sum() == 0


@pytest.fixture
def assert_padding_exact():  # noqa: ANN201
    """``check(backbone, lengths (B,), frames, atol)``: padding exactness of a backbone's states."""
    return _check_padding_exact


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def real_speech() -> Path:
    """Path to ../shared/data/real-speech-mini; skips (with the reason) when it is absent."""
    if not REAL_SPEECH.is_dir():
        pytest.skip(
            f"real-speech-mini not found at {REAL_SPEECH} (it lives in ../shared/data beside the repo)"
        )
    return REAL_SPEECH


def pytest_collection_modifyitems(config, items):  # noqa: ANN001
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


class _CodePayload:
    """Unpickling this creates ``marker``: proof that a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


@pytest.fixture
def code_payload(tmp_path: Path) -> tuple[object, Path]:
    """(object, marker path): pickling the object into a file and loading it with pickle creates the
    marker; tests plant it in crafted files and assert the marker never appears."""
    marker = tmp_path / "code-ran"
    return _CodePayload(marker), marker


_HOLD = """
import sys, time
from spkpeft.dir_lock import exclusive_dir
with exclusive_dir(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def lock_holder():  # noqa: ANN201
    """``hold(directory) -> pid``: another process takes the directory's spkpeft lock and keeps it until
    the test ends (it is killed then)."""
    import subprocess
    import sys

    procs: list[subprocess.Popen] = []

    def hold(directory: Path) -> int:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        p = subprocess.Popen([sys.executable, "-c", _HOLD, str(directory)], stdout=subprocess.PIPE, env=env)
        procs.append(p)
        assert p.stdout.readline().strip() == b"locked"
        return p.pid

    yield hold
    for p in procs:
        p.kill()
        p.wait()
