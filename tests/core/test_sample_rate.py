"""One sample rate: ``spkpeft.data.config.SAMPLE_RATE`` is the only place the package writes 16 kHz down."""

from __future__ import annotations

import ast
from pathlib import Path

import spkpeft
from spkpeft.data.config import SAMPLE_RATE

SRC = Path(spkpeft.__file__).parent
OWNER = SRC / "data" / "config.py"
NOT_YET: tuple[str, ...] = ()


def _copies(path: Path) -> list[str]:
    """``file:line`` of each literal 16000 and each assignment to a name such as ``SR``/``SAMPLE_RATE``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.value == SAMPLE_RATE:
            found.append(f"{path.relative_to(SRC)}:{node.lineno} (literal {node.value})")
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            found += [
                f"{path.relative_to(SRC)}:{node.lineno} ({n} =)" for n in names if n in ("SR", "SAMPLE_RATE")
            ]
    return found


def test_no_module_keeps_its_own_sample_rate():
    files = [p for p in sorted(SRC.rglob("*.py")) if p != OWNER]
    files = [p for p in files if not p.relative_to(SRC).as_posix().startswith(NOT_YET)]
    copies = [c for p in files for c in _copies(p)]
    assert copies == [], f"import SAMPLE_RATE from spkpeft.data.config instead: {copies}"
    assert any("(SAMPLE_RATE =)" in c for c in _copies(OWNER))  # the scan does see a definition
