"""Model selection and early stopping on a held-out dev set of speakers.

Every ``train.dev_every`` optimiser steps the main process embeds the dev manifest's utterances with the
model in eval mode (no autograd), scores the dev trial list by cosine (after subtracting the dev
embeddings' mean) and computes the EER. The best state so far (the trainable tensors only) is kept in
``RUN/dev/best.safetensors`` with ``RUN/dev/state.json`` (step, EER, history), both written atomically, so
a resumed run keeps its best. At the end of training the best state is loaded back before the model is
saved; with ``train.dev_patience`` P > 0 training stops after P evaluations without improvement.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spkpeft.atomic import replace_file

log = logging.getLogger(__name__)


@dataclass
class DevState:
    """What the selector remembers between evaluations (and across a resume)."""

    best_eer: float = float("inf")
    best_step: int = -1
    evaluations_since_best: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class DevSelector:
    """Args: ``manifest`` (CutSet path), ``trials`` (labelled trial list), ``run_dir`` (the run's root),
    ``patience`` (0: never stop early)."""

    def __init__(self, manifest: str, trials: str, run_dir: Path, patience: int = 0) -> None:
        from spkpeft.data.manifest import load_utterances
        from spkpeft.data.trials import check_trials, read_trials

        self.utts = load_utterances(manifest, need_speaker=False)
        self.trials = read_trials(trials)
        if any(t.label is None for t in self.trials):
            raise ValueError(f"train.dev_trials {trials}: needs labelled trials (label a b)")
        check_trials(self.trials, [u.id for u in self.utts], f"train.dev_trials {trials}")
        self.dir = Path(run_dir) / "dev"
        self.patience = patience
        self.state = self._load_state()

    @property
    def best_path(self) -> Path:
        return self.dir / "best.safetensors"

    def _load_state(self) -> DevState:
        path = self.dir / "state.json"
        if not path.is_file():
            return DevState()
        d = json.loads(path.read_text())
        return DevState(d["best_eer"], d["best_step"], d["evaluations_since_best"], d["history"])

    def dev_eer(self, model: Any) -> float:
        """Cosine EER (fraction) of the dev trials with ``model`` (a SpeakerModel) as it is now."""
        from spkpeft.data.eval_dataset import build_eval_loader
        from spkpeft.eval.embed import extract_embeddings, model_embed_fn
        from spkpeft.eval.metrics import compute_metrics
        from spkpeft.eval.scoring import cosine_scores
        from spkpeft.eval.table import trial_labels

        embed = model_embed_fn(model)  # extract_embeddings runs it under no_grad, float32 on CPU
        table = extract_embeddings(embed, build_eval_loader(self.utts, batch_size=8, max_batch_seconds=120))
        scores = cosine_scores(table, self.trials, mean=table.vectors.mean(0))
        return float(compute_metrics(scores, trial_labels(self.trials)).eer)

    def evaluate(self, tm: Any, step: int) -> bool:
        """Evaluate at optimiser step ``step``; keep the state if best. Returns True to stop early."""
        from safetensors.torch import save_file

        eer = self.dev_eer(tm.model)
        s = self.state
        s.history.append({"step": step, "eer": eer})
        if eer < s.best_eer:
            s.best_eer, s.best_step, s.evaluations_since_best = eer, step, 0
            self.dir.mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().cpu().contiguous() for k, v in tm.state_tensors().items()}
            replace_file(self.best_path, lambda tmp: save_file(state, str(tmp)))
        else:
            s.evaluations_since_best += 1
        self._save_state()
        log.info(
            "dev EER %.2f %% at step %d (best %.2f %% at step %d)",
            100 * eer,
            step,
            100 * s.best_eer,
            s.best_step,
        )
        return self.patience > 0 and s.evaluations_since_best >= self.patience

    def _save_state(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.state.__dict__, indent=1) + "\n"
        replace_file(self.dir / "state.json", lambda tmp: tmp.write_text(text))

    def restore_best(self, tm: Any) -> None:
        """Load the best dev state into ``tm`` (nothing when no evaluation has run)."""
        if not self.best_path.is_file():
            return
        from safetensors.torch import load_file

        try:
            tm.load_state_tensors(load_file(str(self.best_path)))
        except KeyError:
            log.warning(
                "the dev-best state (step %d) is from a stage with other trainable parameters; "
                "keeping the final model",
                self.state.best_step,
            )
            return
        log.info(
            "kept the dev-best model: step %d, dev EER %.2f %%",
            self.state.best_step,
            100 * self.state.best_eer,
        )
