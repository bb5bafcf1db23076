"""Target-speaker ASR on the real pre-trained Whisper tiny.en and real speech (issue 15).

Usage (from the repository root, with ``../shared/data`` present and ``spkpeft[whisper-tiny]`` installed)::

    OMP_NUM_THREADS=1 python benchmarks/tsasr_real.py                    # every variant in VARIANTS
    OMP_NUM_THREADS=1 python benchmarks/tsasr_real.py --variants frozen lora
    python benchmarks/tsasr_real.py --table                              # rewrite the table from rows

Data (``tsasr_real_data.py``): training mixtures from the 126 real-speech-train LibriSpeech speakers,
test mixtures from the 10 real-speech-mini test-other speakers (``heldout``: never trained on, by the
TS-ASR model nor by the speaker model), plus new mixtures of unheard stretches of training speakers
(``seen``). Every mixture takes the first 3.5 s of a recording; the enrolment is a later stretch of the
same recording, never mixed. **References are the frozen Whisper tiny.en's own transcripts of the clean
source stretches** (the folders carry no transcripts): a WER here measures whose speech the model writes
down, not absolute accuracy. Each mixture is scored against the target's and the interferer's reference.

Each variant trains a recipe of ``src/spkpeft/configs/tsasr/`` (with the overrides listed in VARIANTS)
exactly as ``spkpeft tsasr train RECIPE --set KEY=VALUE ... --out OUT/runs/NAME`` would, one torch thread,
then decodes greedily. Finished rows are appended to ``OUT/rows.jsonl`` as they finish and skipped when the
benchmark runs again (a half-trained run resumes from its checkpoint). Writes
``benchmarks/results/tsasr_real.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tsasr_real_data as trd  # noqa: E402

RESULTS = HERE / "results" / "tsasr_real"
R = "tsasr_real_whisper_tiny_"
# name -> (recipe, overrides); "frozen*" rows train nothing
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "frozen": (R + "frozen", []),
    "frozen-30s": (R + "frozen", ["model.window_seconds=null"]),
    "prompt-reparam": (R + "prompt", []),
    "prompt": (R + "prompt", ["model.prompts.reparam=false"]),
    "lora": (R + "lora", []),
    "full": (R + "full", []),
}
MAX_NEW_TOKENS = 96  # mixtures are <= 5.25 s (both voices: about 30 words); stops runaway loops early
REFERENCES = "frozen Whisper tiny.en transcripts of the clean source stretches (no human transcripts)"
log = logging.getLogger("tsasr_real")


def variant_config(name: str, data: dict[str, Path], extra: list[str]):  # noqa: ANN201
    from spkpeft.tsasr.config import load_config

    recipe, overrides = VARIANTS[name]
    paths = [f"speaker.path={data['embeddings']}", f"data.train={data['train']}"]
    return load_config(recipe, [*paths, *overrides, *extra])


def train_variant(name: str, cfg, out: Path) -> tuple[Path, dict]:  # noqa: ANN001
    """Train (or resume) ``OUT/runs/NAME``; returns the run and its training facts."""
    from spkpeft.tsasr.model import TSWhisper
    from spkpeft.tsasr.train import train

    run = out / "runs" / name
    during = TSWhisper.from_config(cfg.model, speaker_dim=_speaker_dim(cfg))
    params = sum(p.numel() for p in during.trainable_parameters().values())
    del during
    from spkpeft.train.checkpoint import latest_checkpoint

    t0 = time.time()
    train(cfg, run, resume=latest_checkpoint(run / "checkpoints") is not None)
    seconds = time.time() - t0
    steps = cfg.optim.max_steps
    return run, {"trainable_params_training": params, "train_seconds": round(seconds, 1),
                 "s_per_step": round(seconds / steps, 2), "steps": steps, "lr": cfg.optim.lr_of("default"),
                 "batch_size": cfg.optim.batch_size}  # fmt: skip


def _speaker_dim(cfg) -> int:  # noqa: ANN001
    from spkpeft.tsasr.embeddings import FileEmbeddings

    return FileEmbeddings(cfg.speaker.path).dim


def score_sets(  # noqa: ANN201
    model,  # noqa: ANN001
    cfg,  # noqa: ANN001
    data: dict[str, Path],
    hyp_dir: Path,
    sets=("heldout", "seen"),  # noqa: ANN001
    stretches: dict[str, dict] | None = None,
) -> list[dict]:
    """One row per test set: greedy WER against the target's and against the interferer's reference;
    every hypothesis with both references goes to ``hyp_dir/SPEAKERS.json``. With a speaker slot, each
    set is decoded a second time with the *interferer's* enrolment from ``stretches`` (the stretch table;
    ``swap_*`` fields, hypotheses in ``hyp_dir/SPEAKERS-swapped.json``): a model that follows the
    enrolment then writes the other voice."""
    from spkpeft.tsasr.evaluate import normalizer, score

    norm = normalizer("english", model.tokenizer)
    rows = []
    for speakers in sets:
        table, hyps = _decode_table(model, cfg, data[speakers])
        tgt, itf = (
            score(hyps, {r["id"]: r[k] for r in table}, norm)["greedy"] for k in ("target", "interferer")
        )
        hyp_dir.mkdir(parents=True, exist_ok=True)
        (hyp_dir / f"{speakers}.json").write_text(json.dumps(table, indent=1))
        row = {
            "speakers": speakers, "mixtures": tgt["utterances"],
            "wer_vs_target": round(tgt["wer"], 4), "wer_vs_interferer": round(itf["wer"], 4),
            "mean_utt_wer_vs_target": round(tgt["mean_utt_wer"], 4),
            "mean_utt_wer_vs_interferer": round(itf["mean_utt_wer"], 4),
            "median_utt_wer_vs_target": round(tgt["median_utt_wer"], 4),
            "median_utt_wer_vs_interferer": round(itf["median_utt_wer"], 4),
            "target_closer": target_closer(table, norm),
            "runaway": sum(len(r["hyp"].split()) > 2 * len((r["target"] + " " + r["interferer"]).split())
                           for r in table),
            "examples": [{"id": i, "hyp": h} for i, h in list(hyps["greedy"].items())[:3]],
        }  # fmt: skip
        if stretches is not None and model.prompts is not None and model.prompts.speaker_proj is not None:
            swap = swapped_manifest(data[speakers], stretches, hyp_dir / "swapped")
            swapped, _ = _decode_table(model, cfg, swap)
            (hyp_dir / f"{speakers}-swapped.json").write_text(json.dumps(swapped, indent=1))
            row.update(swap_scores(table, swapped, norm))
        rows.append(row)
    return rows


def _decode_table(model, cfg, manifest: Path) -> tuple[list[dict], dict]:  # noqa: ANN001
    from spkpeft.tsasr.data import MixtureData, build_source
    from spkpeft.tsasr.evaluate import decode

    mix = MixtureData(manifest, build_source(cfg.speaker))
    hyps = decode(model, mix, beams=(1,), batch_size=8, max_new_tokens=MAX_NEW_TOKENS)
    refs = {c.id: (c.supervisions[0].text, c.custom["interferer_text"]) for c in mix.cuts}
    table = [
        {"id": i, "hyp": h, "target": refs[i][0], "interferer": refs[i][1]} for i, h in hyps["greedy"].items()
    ]
    return table, hyps


def swapped_manifest(manifest: Path, stretches: dict[str, dict], out: Path) -> Path:
    """The same mixtures, each with the *interferer's* enrolment stretch (``STEM_src`` -> ``STEM_enrol``)
    instead of the target's; the references stay (the target's transcript is still ``text``)."""
    from lhotse import CutSet
    from lhotse.utils import fastcopy

    cuts = []
    for c in CutSet.from_file(manifest):
        enrol = c.custom["interferer_id"].rsplit("_", 1)[0] + "_enrol"
        if enrol not in stretches:
            raise KeyError(
                f"{manifest}: no enrolment stretch {enrol!r} for interferer {c.custom['interferer_id']}"
            )
        custom = {**c.custom, "enroll_id": enrol, "enroll_path": stretches[enrol]["path"]}
        cuts.append(fastcopy(c, custom=custom))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{manifest.parent.name}.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(path)
    return path


def swap_scores(table: list[dict], swapped: list[dict], norm) -> dict:  # noqa: ANN001
    """``swap_follows``: share of mixtures whose output is closer to the target's reference with the
    target's enrolment *and* closer to the interferer's with the interferer's (0 for a model that ignores
    the enrolment, whose two outputs are the same; 1 = always follows it). ``swap_changed``: share whose
    output changes at all when the enrolment is swapped."""
    follows = changed = 0
    for a, b in zip(table, swapped, strict=True):
        follows += _utt_wer(a["target"], a["hyp"], norm) < _utt_wer(a["interferer"], a["hyp"], norm) and (
            _utt_wer(b["interferer"], b["hyp"], norm) < _utt_wer(b["target"], b["hyp"], norm)
        )
        changed += norm(a["hyp"]) != norm(b["hyp"])
    return {"swap_follows": round(follows / len(table), 4), "swap_changed": round(changed / len(table), 4)}


def _utt_wer(ref: str, hyp: str, norm) -> float:  # noqa: ANN001
    """WER of one hypothesis after ``norm``; 1.0 against an empty reference."""
    import jiwer

    ref, hyp = norm(ref), norm(hyp)
    return jiwer.wer(ref, hyp) if ref.strip() else 1.0


def target_closer(table: list[dict], norm) -> float:  # noqa: ANN001
    """Share of mixtures whose output is closer (lower WER) to the target's reference than to the
    interferer's; ties count half. 0.5 = picks a voice regardless of the enrolment, 1.0 = always the
    target."""
    score = 0.0
    for r in table:
        t, i = _utt_wer(r["target"], r["hyp"], norm), _utt_wer(r["interferer"], r["hyp"], norm)
        score += 1.0 if t < i else 0.5 if t == i else 0.0
    return round(score / len(table), 4)


def backfill(rows: list[dict], out: Path) -> None:
    """Add ``target_closer`` to rows written before it existed, from their saved hypotheses."""
    from spkpeft.tsasr.evaluate import normalizer

    norm = normalizer("english")
    for r in rows:
        hyp_file = out / "hyps" / r["method"] / f"{r['speakers']}.json"
        if "target_closer" not in r and hyp_file.is_file():
            r["target_closer"] = target_closer(json.loads(hyp_file.read_text()), norm)


def run_variant(name: str, data: dict[str, Path], out: Path, extra: list[str]) -> list[dict]:
    from spkpeft.tsasr.model import TSWhisper
    from spkpeft.tsasr.run import load_run

    cfg = variant_config(name, data, extra)
    facts: dict = {"trainable_params_training": 0, "steps": 0}
    if cfg.model.method == "frozen":
        model = TSWhisper.from_config(cfg.model, speaker_dim=1)
    else:
        run, facts = train_variant(name, cfg, out)
        model, cfg = load_run(run)
    trainable = sum(p.numel() for p in model.trainable_parameters().values())
    base = {
        "method": name, "base_method": cfg.model.method, "trainable_params": trainable,
        "trainable_fraction": round(model.trainable_fraction(), 6), **facts,
        "window_seconds": cfg.model.window_seconds, "max_new_tokens": MAX_NEW_TOKENS,
        "prompt_length": cfg.model.prompts.length,
        "overrides": VARIANTS[name][1] + extra, "references": REFERENCES,
    }  # fmt: skip
    stretches = json.loads((data["embeddings"].parent / "stretches.json").read_text())
    return [{**base, **r} for r in score_sets(model, cfg, data, out / "hyps" / name, stretches=stretches)]


def write_results(rows: list[dict], results: Path, mixing: str) -> None:
    results.parent.mkdir(parents=True, exist_ok=True)
    doc = {"references": REFERENCES, "mixtures": mixing, "rows": rows}
    results.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    results.with_suffix(".md").write_text(table(rows, mixing))


def mixing_text(
    overlap: tuple,
    snr_db: tuple,
    speeds=(1.0,),
    train_mixtures: int = trd.MIXTURES["train"],
    pairs: bool = False,
) -> str:
    """How the mixtures were made, for the table's head."""
    lo, hi = (round(100 * x) for x in overlap)
    ov = "no overlap (the speakers take turns)" if hi == 0 else f"overlap {lo}-{hi} %"
    text = f"3.5 s stretches, {ov}, {snr_db[0]:g}..{snr_db[1]:g} dB"
    copies = sorted(set(speeds) - {1.0})
    if copies:
        factors = ", ".join(f"{v:g}" for v in copies)
        text += f"; training speakers also at speeds {factors} as new pseudo-speakers"
    if pairs:
        text += (f"; {train_mixtures // 2} training mixtures, each twice (once per speaker as the target, "
                 "both in one batch)")  # fmt: skip
    elif train_mixtures != trd.MIXTURES["train"]:
        text += f"; {train_mixtures} training mixtures"
    return text


def table(rows: list[dict], mixing: str) -> str:
    head = (
        f"Whisper tiny.en, real two-speaker mixtures ({mixing}), greedy.\n"
        f"References: {REFERENCES}.\n\n"
        "| method | trainable params (saved / while training) | speakers | mixtures | WER vs target | "
        "WER vs interferer | output closer to target | median utt. WER vs target / interferer | "
        "runaway outputs | follows a swapped enrolment | steps x batch | s/step |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        train = f"{r['steps']} x {r.get('batch_size', '-')}" if r["steps"] else "-"
        swap = f"{100 * r['swap_follows']:.0f} %" if "swap_follows" in r else "-"
        lines.append(
            f"| {r['method']} | {r['trainable_params']:,} / {r['trainable_params_training']:,} | "
            f"{r['speakers']} | {r['mixtures']} | {100 * r['wer_vs_target']:.1f} % | "
            f"{100 * r['wer_vs_interferer']:.1f} % | {100 * r.get('target_closer', float('nan')):.0f} % | "
            f"{100 * r['median_utt_wer_vs_target']:.1f} / "
            f"{100 * r['median_utt_wer_vs_interferer']:.1f} % | {r['runaway']} | {swap} | {train} | "
            f"{r.get('s_per_step', '-')} |"
        )
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench_out/tsasr_real")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--set", dest="set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra override for every variant (repeatable, as in spkpeft train)")  # fmt: skip
    p.add_argument("--tag", default="", help="suffix of the row names (for --set searches)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--speaker-model", type=Path, default=trd.SPEAKER_MODEL, help="spkpeft speaker model run")
    p.add_argument("--seed", type=int, default=0, help="seed of the mixtures")
    p.add_argument("--overlap", nargs=2, type=float, default=trd.OVERLAP, metavar=("LO", "HI"),
                   help="overlap ratio range of the mixtures (0 0: the speakers take turns)")  # fmt: skip
    p.add_argument("--snr", nargs=2, type=float, default=trd.SNR_DB, metavar=("LO", "HI"),
                   help="target-to-interferer ratio range in dB")  # fmt: skip
    p.add_argument(
        "--speeds",
        nargs="+",
        type=float,
        default=[1.0],
        metavar="F",
        help="speed factors: copies of the training speakers at each factor != 1, each a new "
        "pseudo-speaker (held-out and seen mixtures stay natural)",
    )
    p.add_argument("--train-mixtures", type=int, default=trd.MIXTURES["train"], help="training cuts")
    p.add_argument("--ge2e", action="store_true",
                   help="enrolment embeddings from Resemblyzer's GE2E encoder instead of --speaker-model "
                        "(a comparison of embedding sources; needs resemblyzer)")  # fmt: skip
    p.add_argument("--pair-targets", action="store_true",
                   help="train on each mixture once per speaker as the target, both in one batch "
                        "(data.pair_targets)")  # fmt: skip
    p.add_argument("--results", type=Path, default=RESULTS, help="results path stem (.json and .md)")
    p.add_argument("--table", action="store_true", help="only rewrite the results from OUT/rows.jsonl")
    a = p.parse_args(argv)
    mixing = mixing_text(a.overlap, a.snr, a.speeds, a.train_mixtures, a.pair_targets)
    if a.pair_targets:
        a.set = ["data.pair_targets=true", *a.set]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    rows_file = out / "rows.jsonl"
    rows = [json.loads(x) for x in rows_file.read_text().splitlines()] if rows_file.is_file() else []
    if not a.table:
        data = trd.prepare(out / "data", a.seed, a.speaker_model, tuple(a.overlap), tuple(a.snr),
                           tuple(a.speeds), a.train_mixtures, a.pair_targets, a.ge2e)  # fmt: skip
        if a.ge2e:
            a.set = [*a.set, f"speaker.path={data['embeddings_ge2e']}"]
        done = {r["method"] for r in rows}
        for v in a.variants:
            name = v + a.tag
            if name in done:
                continue
            VARIANTS.setdefault(name, VARIANTS[v])
            new = run_variant(name, data, out, a.set)
            with rows_file.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in new)
            rows += new
            write_results(rows, a.results, mixing)
            log.info(
                "%s done: %s",
                name,
                [(r["speakers"], r["wer_vs_target"], r["wer_vs_interferer"]) for r in new],
            )
    backfill(rows, out)
    write_results(rows, a.results, mixing)
    print(table(rows, mixing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
