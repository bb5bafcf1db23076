"""What an evaluation used, for its report (model, method, backbone, data, cohort), and the checks on
the AS-norm / calibration cohort that ``spkpeft eval`` warns about."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def eval_provenance(
    model_dir: Path,
    training_data: str,
    test_manifest: str | Path,
    trial_files: Mapping[str, Path],
    cohort_manifest: str | Path | None,
    cohort_utts: Sequence[Any],
    fingerprint: str = "",
) -> dict[str, dict]:
    """{trial list name: provenance dict} (strings only, JSON-ready) for :func:`write_report`;
    ``fingerprint``: the model files' hash (the report drops earlier lists evaluated with another)."""
    meta = json.loads((Path(model_dir) / "model.json").read_text())
    cohort = "none (cosine scores only)"
    if cohort_manifest:
        n_spk = len({u.speaker for u in cohort_utts})
        cohort = f"{cohort_manifest} ({n_spk} speakers, {len(cohort_utts)} utterances)"
    common = {
        "model": str(Path(model_dir).resolve()),
        "model_fingerprint": fingerprint,
        "method": meta.get("method", "?"),
        "backbone": meta.get("backbone", {}).get("name_or_path", "?"),
        "training_data": training_data or "unknown (no data.train_manifest in the run's config)",
        "test_manifest": str(test_manifest),
        "cohort": cohort,
        "evaluated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return {name: {**common, "trial_list": str(path)} for name, path in trial_files.items()}


def check_cohort(
    test_utts: Sequence[Any],
    cohort_utts: Sequence[Any],
    cohort_manifest: str | Path,
    top_k: int,
    asnorm: bool,
) -> None:
    """Warn when the cohort shares speakers with the test utterances (AS-norm and calibration then
    learn from the speakers they are tested on) and when it has fewer speakers than AS-norm's top_k."""
    test_spk = {u.speaker for u in test_utts if u.speaker}
    cohort_spk = {u.speaker for u in cohort_utts if u.speaker}
    shared = sorted(test_spk & cohort_spk)
    if shared:
        log.warning(
            "cohort %s shares %d of the %d test speakers (e.g. %s): AS-norm and calibration then use the "
            "test speakers themselves and the scores look better than they are; give a cohort of other "
            "speakers (--cohort, e.g. the training manifest)",
            cohort_manifest, len(shared), len(test_spk), ", ".join(shared[:3]),
        )  # fmt: skip
    if asnorm and len(cohort_spk) < top_k:
        log.warning(
            "cohort %s has %d speakers, fewer than AS-norm's top_k=%d: every cohort speaker is used and "
            "AS-norm is weaker than intended; give a larger cohort or lower top_k (--set top_k=N)",
            cohort_manifest, len(cohort_spk), top_k,
        )  # fmt: skip
