"""Trial lists: ``label enroll test`` lines (VoxCeleb style); ids are manifest (cut) ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Trial:
    enroll: str
    test: str
    label: int | None  # 1 target, 0 non-target, None unknown (scoring only)


def read_trials(path: str | Path) -> list[Trial]:
    """Read a ``label enroll test`` (or ``enroll test``) trial list. Malformed lines raise ValueError
    naming the file and line number."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trial list not found: {path}")
    out: list[Trial] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) == 3:
            if parts[0] not in {"0", "1"}:
                raise ValueError(f"{path}:{n}: label must be 0 or 1, got {parts[0]!r}")
            out.append(Trial(parts[1], parts[2], int(parts[0])))
        elif len(parts) == 2:
            out.append(Trial(parts[0], parts[1], None))
        else:
            raise ValueError(f"{path}:{n}: expected 'label enroll test' or 'enroll test', got {line!r}")
    if not out:
        raise ValueError(f"{path}: no trials")
    return out


def write_trials(trials: list[Trial], path: str | Path) -> None:
    lines = [
        f"{t.label} {t.enroll} {t.test}" if t.label is not None else f"{t.enroll} {t.test}" for t in trials
    ]
    Path(path).write_text("\n".join(lines) + "\n")
