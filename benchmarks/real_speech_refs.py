"""Training-free reference rows of the real-speech benchmark.

- ``mfcc``: mean MFCC (c1..c19) per utterance, cosine after subtracting the training-set mean;
- ``frozen-layer``: mean-pooled hidden states of one layer of the frozen Whisper tiny.en encoder (the
  layer with the lowest dev EER; every layer's dev EER is recorded), cosine after subtracting the
  training-set mean;
- ``resemblyzer``: Resemblyzer's GE2E speaker encoder (a real speaker model trained on thousands of
  speakers), when the package is installed (``pip install resemblyzer 'setuptools<81'``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger("real_speech")
TESTS = {"mini": "test_mini", "ravdess": "test_ravdess"}


def _cosine_metrics(emb: dict[str, np.ndarray], mean: np.ndarray | None, trials_path: Path) -> dict:
    """Cosine EER (%) and minDCF(0.01) of a trial list over ``emb``; ``mean`` is subtracted when given."""
    from spkpeft.data.trials import read_trials
    from spkpeft.eval.metrics import compute_metrics
    from spkpeft.eval.scoring import cosine_scores
    from spkpeft.eval.table import EmbeddingTable, trial_labels

    trials = read_trials(trials_path)
    ids = sorted(emb)
    table = EmbeddingTable(ids, np.stack([emb[u] for u in ids]))
    m = compute_metrics(cosine_scores(table, trials, mean=mean), trial_labels(trials))
    return {
        "eer_cosine": round(100 * m.eer, 3),
        "mindcf_cosine": round(float(m.dcf(0.01).value), 4),
        "n_target": m.n_target,
        "n_nontarget": m.n_nontarget,
    }


def _rows(name: str, embed: Callable[[str], dict[str, np.ndarray]], paths: dict, extra: dict) -> list[dict]:
    """Embed train (for the mean) and both test sets with ``embed(manifest_key)``, score both lists:
    ``eer_cosine`` after subtracting the training-set mean (as ``spkpeft eval``'s cosine does for the
    trained systems), ``eer_cosine_raw`` without."""
    mean = np.mean(np.stack(list(embed("train").values())), axis=0)
    rows = []
    for test, key in TESTS.items():
        emb = embed(key)
        m = _cosine_metrics(emb, mean, paths[f"trials_{key}"])
        m["eer_cosine_raw"] = _cosine_metrics(emb, None, paths[f"trials_{key}"])["eer_cosine"]
        rows.append(
            {"method": name, "backend": "-", "seed": 0, "test": test, "trainable_params": 0, **extra, **m}
        )
    return rows


def mfcc_rows(paths: dict) -> list[dict]:
    from spkpeft.data.baseline import mean_mfcc
    from spkpeft.data.manifest import load_utterances

    return _rows("mfcc", lambda key: mean_mfcc(load_utterances(paths[key])), paths, {"train_s": 0.0})


def layer_means(paths: dict, key: str, backbone) -> dict[str, np.ndarray]:  # noqa: ANN001
    """{utterance id: (L+1, D) mean over real frames of every layer's hidden states}."""
    import torch

    from spkpeft.data.eval_dataset import build_eval_loader

    out = {}
    with torch.no_grad():
        for batch in build_eval_loader(str(paths[key]), batch_size=8, max_batch_seconds=120):
            o = backbone(batch["wav"], batch["lengths"])
            m = o.mask.to(o.hidden_states.dtype)[None, :, :, None]  # (1, B, T, 1)
            means = (o.hidden_states * m).sum(2) / m.sum(2)  # (L+1, B, D)
            for j, u in enumerate(batch["ids"]):
                out[str(u)] = means[:, j].numpy()
    return out


def frozen_layer_rows(paths: dict, backbone_name: str = "whisper-tiny.en") -> list[dict]:
    from spkpeft.backbones import load_backbone

    backbone = load_backbone(backbone_name)
    cache = {key: layer_means(paths, key, backbone) for key in ("train", "dev", *TESTS.values())}
    n_states = next(iter(cache["train"].values())).shape[0]
    dev = []
    for layer in range(n_states):
        pick = {k: {u: v[layer] for u, v in c.items()} for k, c in cache.items()}
        mean = np.mean(np.stack(list(pick["train"].values())), axis=0)
        dev.append(_cosine_metrics(pick["dev"], mean, paths["trials_dev"])["eer_cosine"])
    best = int(np.argmin(dev))
    log.info("frozen %s layers, dev EER %%: %s; best layer %d", backbone_name, dev, best)
    return _rows(
        "frozen-layer",
        lambda key: {u: v[best] for u, v in cache[key].items()},
        paths,
        {"layer": best, "dev_eer_per_layer": dev, "train_s": 0.0},
    )


def resemblyzer_rows(paths: dict) -> list[dict]:
    try:
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError:
        log.info("resemblyzer not installed: no GE2E reference row")
        return []
    from spkpeft.data.manifest import load_utterances

    enc = VoiceEncoder("cpu", verbose=False)

    def embed(key: str) -> dict[str, np.ndarray]:
        return {
            u.id: enc.embed_utterance(preprocess_wav(u.load(), 16000)) for u in load_utterances(paths[key])
        }

    return _rows("resemblyzer-ge2e", embed, paths, {"train_s": 0.0})


def reference_rows(paths: dict, done: list[dict]) -> list[dict]:
    """The reference rows not yet in ``done``."""
    have = {r["method"] for r in done}
    out = []
    for name, fn in (
        ("mfcc", mfcc_rows),
        ("frozen-layer", frozen_layer_rows),
        ("resemblyzer-ge2e", resemblyzer_rows),
    ):
        if name not in have:
            out += fn(paths)
    return out
