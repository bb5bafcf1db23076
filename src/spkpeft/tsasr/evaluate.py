"""Word error rates of a target-speaker Whisper on mixtures: greedy and beam search, corpus-level WER and
the mean of per-utterance WERs, after Whisper's text normalisation, computed with jiwer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from spkpeft import progress
from spkpeft.tsasr.data import MixtureData, collate
from spkpeft.tsasr.model import TSWhisper

log = logging.getLogger(__name__)
NORMALIZERS = ("english", "basic", "none")


def normalizer(name: str, tokenizer=None) -> Callable[[str], str]:  # noqa: ANN001
    """``english`` (EnglishTextNormalizer, with the tokenizer's spelling map when it has one), ``basic``
    (BasicTextNormalizer) or ``none`` (whitespace only)."""
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer, EnglishTextNormalizer

    if name == "english":
        return EnglishTextNormalizer(getattr(tokenizer, "english_spelling_normalizer", None) or {})
    if name == "basic":
        return BasicTextNormalizer()
    if name == "none":
        return lambda s: " ".join(s.split())
    raise ValueError(f"normalizer {name!r} is unknown; valid: {', '.join(NORMALIZERS)}")


def wer_scores(refs: Sequence[str], hyps: Sequence[str], norm: Callable[[str], str]) -> dict[str, float]:
    """Corpus WER (errors / reference words), mean and median per-utterance WER, and counts; empty
    references after normalisation are left out (and counted in ``skipped_empty``). The median resists
    the few runaway outputs (a decoder looping until its token limit) that dominate the other two."""
    import jiwer

    pairs = [(norm(r), norm(h)) for r, h in zip(refs, hyps, strict=True)]
    kept = [(r, h) for r, h in pairs if r.strip()]
    if not kept:
        raise ValueError("every reference is empty after normalisation: nothing to score")
    r, h = [p[0] for p in kept], [p[1] for p in kept]
    out = jiwer.process_words(r, h)
    per_utt = [jiwer.wer(a, b) for a, b in kept]
    return {
        "wer": float(out.wer),
        "mean_utt_wer": float(sum(per_utt) / len(per_utt)),
        "median_utt_wer": float(np.median(per_utt)),
        "substitutions": out.substitutions,
        "deletions": out.deletions,
        "insertions": out.insertions,
        "utterances": len(kept),
        "skipped_empty": len(pairs) - len(kept),
    }


@torch.no_grad()
def transcribe_data(
    model: TSWhisper,
    data: MixtureData,
    num_beams: int,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
) -> dict[str, str]:
    """id -> hypothesis for every mixture of ``data`` (at most ``max_new_tokens`` tokens each; None =
    :meth:`TSWhisper.generate`'s default, half of Whisper's decoder context)."""
    loader = DataLoader(data, batch_size, shuffle=False, collate_fn=lambda b: collate(model, b))
    dev = next(model.whisper.parameters()).device
    hyps: dict[str, str] = {}
    for batch in progress.track(loader, total=len(loader), desc=f"decode beams={num_beams}"):
        spk = batch["speaker"].to(dev) if model.prompts is not None else None
        ids = model.generate(
            batch["features"].to(dev), spk, num_beams=num_beams, max_new_tokens=max_new_tokens
        )
        hyps.update(zip(batch["ids"], model.decode(ids)))
    return hyps


def decode(
    model: TSWhisper,
    data: MixtureData,
    beams: Sequence[int] = (1, 5),
    batch_size: int = 16,
    max_new_tokens: int | None = None,
) -> dict[str, dict[str, str]]:
    """``{"greedy" | "beam5": {id: hypothesis}}``: every mixture of ``data`` decoded once per search."""
    return {search_name(k): transcribe_data(model, data, k, batch_size, max_new_tokens) for k in beams}


def search_name(num_beams: int) -> str:
    return "greedy" if num_beams == 1 else f"beam{num_beams}"


def score(hyps: dict[str, dict[str, str]], refs: dict[str, str], norm: Callable[[str], str]) -> dict:
    """Hypotheses of :func:`decode` against ``refs`` (id -> text): ``{search: scores}`` plus ``examples``
    (first 5 id/ref/hyp of the first search). The same hypotheses can be scored against other references
    (e.g. the interferer's transcripts) without decoding again."""
    report: dict = {}
    for name, h in hyps.items():
        report[name] = wer_scores([refs[i] for i in h], list(h.values()), norm)
        report.setdefault("examples", [{"id": i, "ref": refs[i], "hyp": t} for i, t in list(h.items())[:5]])
        log.info("%s: WER %.2f %% (mean per utterance %.2f %%)", name, 100 * report[name]["wer"],
                 100 * report[name]["mean_utt_wer"])  # fmt: skip
    return report


def evaluate(
    model: TSWhisper,
    data: MixtureData,
    beams: Sequence[int] = (1, 5),
    norm: str = "english",
    batch_size: int = 16,
) -> dict:
    """``{"greedy" | "beam5": scores, ...}`` plus ``examples`` (first 5 id/ref/hyp of the first search)."""
    refs = {c.id: c.supervisions[0].text for c in data.cuts}
    return score(decode(model, data, beams, batch_size), refs, normalizer(norm, model.tokenizer))
