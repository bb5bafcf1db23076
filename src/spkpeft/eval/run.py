"""``spkpeft eval``: evaluate a trained run on trial lists and write its report.

Steps: read the run's ``eval`` section (``RUN/config.yaml``, read alone: no experiment is built); read
the trial lists and check every id against the test manifest (an unknown id is an error naming it);
embed the utterances the trials use (cached in ``RUN/embeddings/``); embed a per-speaker subsample of the
training manifest as the AS-norm cohort and calibration set (also cached); fit the
:class:`~spkpeft.eval.scorer.Scorer` on it once; score with :func:`spkpeft.eval.pipeline.evaluate`; write
``report.md``/``report.json``/plots, and save the scorer in the model directory (``RUN/model/scoring/``),
where :class:`spkpeft.SpeakerVerifier` and ``spkpeft export`` find it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spkpeft.data.trials import Trial, check_trials, read_trials
from spkpeft.eval.config import RunEvalConfig, parse_trial_specs, run_eval_config
from spkpeft.eval.embed import ChunkSettings, cache_key, embed_manifest, model_fingerprint
from spkpeft.eval.layer_stats import LayerStats, layer_values
from spkpeft.eval.scorer import CALIBRATION_FILE, FILES, SCORING_DIR, Scorer, TrainingSet, scoring_dir
from spkpeft.model import model_dir_of, run_dir_of

log = logging.getLogger(__name__)


def cache_dir(run: Path, manifest: str | Path, prefix: str = "") -> Path:
    """``RUN/embeddings/<prefix><manifest stem>-<hash of its absolute path>``."""
    p = Path(manifest)
    stem = p.name.split(".")[0] or "manifest"
    digest = hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:8]
    return run / "embeddings" / f"{prefix}{stem}-{digest}"


def sample_per_speaker(utts: Sequence[Any], cap: int, seed: int = 0) -> list[Any]:
    """At most ``cap`` utterances per speaker (seeded choice; 0 keeps all), in manifest order."""
    if cap <= 0:
        return list(utts)
    by_spk: dict[str, list[int]] = {}
    for i, u in enumerate(utts):
        by_spk.setdefault(u.speaker, []).append(i)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for spk in sorted(by_spk):
        idx = by_spk[spk]
        keep += idx if len(idx) <= cap else rng.choice(idx, cap, replace=False).tolist()
    return [utts[i] for i in sorted(keep)]


def load_trial_lists(specs: Mapping[str, Path], manifest_ids: Sequence[str], manifest: str) -> dict:
    lists: dict[str, list[Trial]] = {}
    for name, path in specs.items():
        trials = read_trials(path)
        check_trials(trials, manifest_ids, where=f"trial list {path} vs manifest {manifest}")
        lists[name] = trials
    return lists


def evaluate_run(
    run: str | Path,
    trials: Sequence[str] = (),
    manifest: str | None = None,
    cohort_manifest: str | None = None,
    config: RunEvalConfig | None = None,
    device: str | None = None,
    plots: bool = True,
    out: str | Path | None = None,
) -> dict[str, Path]:
    """Evaluate ``run`` (see the module docstring); returns the written paths (``markdown`` = report.md).

    ``trials``: ``PATH`` or ``NAME=PATH`` specs (default: the run config's ``eval.trials``);
    ``manifest``/``cohort_manifest`` default to ``eval.manifest`` and ``eval.cohort_manifest`` (else
    ``data.train_manifest``); ``config`` replaces the run's whole ``eval`` section. ``out``: where the
    report, scores and plots go (default: the run); the scorer always goes to the model directory.
    """
    from spkpeft.data.manifest import load_utterances
    from spkpeft.eval.pipeline import evaluate
    from spkpeft.eval.provenance import check_cohort, eval_provenance
    from spkpeft.eval.report import write_report
    from spkpeft.model import load_speaker_model

    run = Path(run)
    model_dir = model_dir_of(run)
    refuse_shipped_model(run, model_dir)
    run_cfg, train_manifest = run_eval_config(run)
    cfg = config or run_cfg
    manifest = manifest or cfg.manifest
    if not manifest:
        raise ValueError("no test manifest: pass --manifest or set eval.manifest in the run's config.yaml")
    specs = parse_trial_specs(list(trials) or cfg.trials)
    if not specs:
        raise ValueError("no trial lists: pass --trials FILE or set eval.trials in the run's config.yaml")
    utts = load_utterances(manifest, need_speaker=False)
    lists = load_trial_lists(specs, [u.id for u in utts], manifest)
    used = {u for tl in lists.values() for t in tl for u in (t.enroll, t.test)}
    test_utts = [u for u in utts if u.id in used]

    model = load_speaker_model(model_dir, device=device)
    chunks = ChunkSettings(cfg.chunk_seconds, cfg.overlap_seconds)
    fingerprint = model_fingerprint(model_dir)
    key = cache_key(fingerprint, chunks)
    extract = dict(chunks=chunks, batch_size=cfg.batch_size, max_batch_seconds=cfg.max_batch_seconds)
    test_cache = cache_dir(run, manifest)
    stats = LayerStats(model)
    if any(test_cache.glob("emb-*.safetensors")):  # statistics of the utterances already cached
        stats.load_merge(test_cache / "layer_stats.json")
    n_before = stats.count
    test = embed_manifest(model, test_utts, test_cache, key, stats=stats, **extract)
    if stats.count > n_before:
        stats.save(test_cache / "layer_stats.json")

    cohort_path = cohort_manifest or cfg.cohort_manifest or train_manifest
    train_set, cohort_utts = None, []
    if cohort_path:
        cohort_utts = sample_per_speaker(load_utterances(cohort_path), cfg.cohort_per_speaker, cfg.seed)
        check_cohort(test_utts, cohort_utts, cohort_path, cfg.top_k, cfg.asnorm)
        same = Path(cohort_path).resolve() == Path(manifest).resolve()  # one cache: embed each file once
        cohort_cache = test_cache if same else cache_dir(run, cohort_path, "cohort-")
        table = embed_manifest(model, cohort_utts, cohort_cache, key, **extract)
        train_set = TrainingSet(table, {u.id: u.speaker for u in cohort_utts})
    else:
        log.warning("no cohort manifest (eval.cohort_manifest / data.train_manifest): cosine scores only")
    scorer = Scorer.fit(train_set, cfg.scoring())
    results = evaluate(test, lists, scorer, cfg.scoring())
    prov = eval_provenance(model_dir, train_manifest, manifest, specs, cohort_path, cohort_utts, fingerprint)
    for name, entry in results["trial_lists"].items():
        entry["provenance"] = prov[name]
    written = write_report(out or run, results, layer_values=layer_values(stats, model), plots=plots)
    scorer.set_threshold(results["trial_lists"])
    scorer.chunk_seconds, scorer.overlap_seconds = chunks.chunk_seconds, chunks.overlap_seconds
    written.update(save_scorer(scorer, model_dir))
    return written


def save_scorer(scorer: Scorer, model_dir: Path) -> dict[str, Path]:
    """Save ``scorer`` in ``MODEL/scoring/`` and remove the scorer files a run evaluated before kept at its
    top level (superseded); returns ``{"scoring": scoring.json[, "calibration": calibration.json]}``."""
    written = {"scoring": scorer.save(model_dir / SCORING_DIR)}
    if scorer.calibrator is not None:
        written["calibration"] = model_dir / SCORING_DIR / CALIBRATION_FILE
    run = run_dir_of(model_dir)
    for name in FILES if run is not None else ():
        if (run / name).is_file():
            (run / name).unlink()
            log.info("removed %s: the scorer now lives in %s", run / name, model_dir / SCORING_DIR)
    return written


def refuse_shipped_model(run: Path, model_dir: Path) -> None:
    """Raise if ``run`` is a model directory outside a training run that ships a scorer: evaluating
    saves the scorer into the model directory, which would replace the calibration the model ships with
    (and its model card describes)."""
    if model_dir != run or run_dir_of(model_dir) is not None:  # a training run's scorer is eval's to write
        return
    d = scoring_dir(model_dir)
    shipped = [str((d / n).relative_to(run)) for n in FILES if (d / n).is_file()]
    if shipped:
        raise ValueError(
            f"{run} is a model directory that ships its own scoring state ({', '.join(shipped)}); "
            "`spkpeft eval` writes its results into the directory it evaluates and would replace that "
            "state. Evaluate the training run it came from, or a copy with those files removed"
        )
