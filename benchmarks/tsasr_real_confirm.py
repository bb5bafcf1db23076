"""Check search rows of ``tsasr_real.py`` on 200 new held-out mixtures (another mixture seed, 11; the
overlap and SNR ranges the runs were trained with).

Usage (after ``tsasr_real.py`` trained the runs named)::

    OMP_NUM_THREADS=1 python benchmarks/tsasr_real_confirm.py prompt-reparam-shallow-P4 prompt-reparam-shallow

Prints the held-out scores of each run (the fields of ``tsasr_real.py``'s rows, with the enrolment-swap
measure), and with ``--results FILE.json`` keeps them there; hypotheses go to ``OUT/confirm/hyps/RUN/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tsasr_real as tr  # noqa: E402

KEYS = ("mixtures", "wer_vs_target", "wer_vs_interferer", "target_closer", "median_utt_wer_vs_target",
        "median_utt_wer_vs_interferer", "runaway", "swap_follows", "swap_changed")  # fmt: skip


def main() -> int:
    from spkpeft.tsasr import stretches as st
    from spkpeft.tsasr.run import load_run
    from spkpeft.tsasr.simulate import SimulateConfig, simulate_mixtures

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", type=Path, default=Path("bench_out/tsasr_real"))
    p.add_argument("--mixtures", type=int, default=200)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--results", type=Path, default=None,
                   help="also keep the rows in this JSON file (beside the rows already there)")  # fmt: skip
    a = p.parse_args()
    torch.set_num_threads(1)
    out = a.out / "confirm"
    table = json.loads((a.out / "data" / "stretches.json").read_text())
    if not (out / "mixtures.jsonl.gz").is_file():
        src, enrol = st.sources_and_enrolments(table, "heldout")
        kept = a.out / "data" / "mixtures.json"  # the runs' mixture settings (tsasr_real.py --overlap/--snr)
        mixing = json.loads(kept.read_text()) if kept.is_file() else {}
        overlap, snr = mixing.get("overlap", tr.trd.OVERLAP), mixing.get("snr_db", tr.trd.SNR_DB)
        cfg = SimulateConfig(a.mixtures, tuple(overlap), tuple(snr), seed=a.seed)
        simulate_mixtures(src, out, cfg, enrolments=enrol)
    for name in a.runs:
        model, cfg = load_run(a.out / "runs" / name)
        row = tr.score_sets(
            model, cfg, {"heldout": out / "mixtures.jsonl.gz"}, out / "hyps" / name, ("heldout",), table
        )[0]
        print(name, {k: row[k] for k in KEYS if k in row}, flush=True)
        if a.results is not None:
            kept = json.loads(a.results.read_text())["rows"] if a.results.is_file() else []
            new = {"method": name, "mixture_seed": a.seed, **{k: row[k] for k in KEYS if k in row}}
            rows = [r for r in kept if r["method"] != name] + [new]
            what = f"held-out speakers, {a.mixtures} new mixtures (tsasr_real_confirm.py, seed {a.seed})"
            doc = {"what": what, "references": tr.REFERENCES, "rows": rows}
            a.results.parent.mkdir(parents=True, exist_ok=True)
            a.results.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
