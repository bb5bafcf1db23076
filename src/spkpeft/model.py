"""SpeakerModel: backbone + method + back-end, as one ``nn.Module`` that maps waveforms to embeddings.

``forward(wav (B, S), lengths (B,)) -> (B, E)`` runs the backbone once (all hidden states in one pass)
and the back-end on them, with the method's ``adapt_aggregate`` (UniPET's inter adapter) applied to the
weighted layer sum. When nothing in the backbone or the method is trainable, the backbone runs under
``torch.no_grad`` so no autograd graph is built for it.

Saved inference model (``save_model``; ``RUN/model/`` of a training run)::

    model.json             {"format": 1, "backbone": {...BackboneConfig}, "backend": {...}, "embed_dim": E,
                            "method": name}
    method/                method.safetensors + method.json (spkpeft.methods.io.save_method)
    backend.safetensors    back-end state dict (weights and buffers)

The backbone itself is not copied: ``backbone.name_or_path`` (a hub id or local directory) is loaded
again; presets (random weights) are rebuilt from ``backbone.init_seed``. A relative ``name_or_path``
naming a transformers directory inside the model directory is loaded from there (``spkpeft export``
writes ``backbone/``, so an exported model is self-contained); ``../`` never leads out of it, and a
backbone outside the model directory is loaded with a warning that names it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from spkpeft.backbones.config import BackboneConfig
from spkpeft.config import parse, parse_named, to_dict

if TYPE_CHECKING:  # importing these packages loads every method and back-end (registration)
    from spkpeft.backbones.backbone import SpeechBackbone
    from spkpeft.backends.base import BackendConfig, PostAggregate
    from spkpeft.methods.base import Method, MethodConfig

log = logging.getLogger(__name__)

MODEL_FORMAT = 1


class SpeakerModel(nn.Module):
    """Composition of a :class:`SpeechBackbone`, a :class:`Method` and a back-end.

    ``backbone_cfg`` and ``backend_cfg`` (default: the back-end's ``cfg``) are what :func:`save_model`
    records so the model can be rebuilt.
    """

    def __init__(
        self,
        backbone: SpeechBackbone,
        method: Method,
        backend: nn.Module,
        backbone_cfg: BackboneConfig | None = None,
        backend_cfg: BackendConfig | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.backend = backend
        self.backbone_cfg = backbone_cfg
        self.backend_cfg = backend_cfg if backend_cfg is not None else getattr(backend, "cfg", None)
        self.set_method(method)

    @property
    def embed_dim(self) -> int:
        return int(self.backend.embed_dim)

    def set_method(self, method: Method) -> None:
        """Attach ``method`` (already built on ``self.backbone``); its parameters must live in this model."""
        if isinstance(method, nn.Module):
            self.method = method
        else:  # a method living inside the backbone (peft layers): keep it out of the module tree
            self._modules.pop("method", None)
            object.__setattr__(self, "method", method)
        self._adapts_aggregate = _adapts_aggregate(method, self.backbone.hidden_size)
        mine = {id(p) for p in self.parameters()}
        stray = [n for n, p in method.own_parameters().items() if id(p) not in mine]
        if stray:
            raise ValueError(
                f"method {method.name!r} owns parameters outside the model's module tree: {stray[:5]}; a "
                "method must inject its modules into the backbone or be an nn.Module itself"
            )

    def method_trains(self) -> bool:
        """Whether any parameter the method owns (the backbone itself for ``full``) requires grad."""
        return any(p.requires_grad for p in self.method.own_parameters().values())

    def train(self, mode: bool = True) -> SpeakerModel:
        super().train(mode)
        if mode and not getattr(self.backbone_cfg, "train_mode", False):
            hf = getattr(self.backbone, "model", None)
            if isinstance(hf, nn.Module):
                hf.eval()  # no dropout / layer drop / SpecAugment inside the pre-trained encoder
        return self

    def _post_aggregate(self) -> PostAggregate | None:
        return self.method.adapt_aggregate if self._adapts_aggregate else None

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) float waveforms at 16 kHz, (B,) real lengths -> (B, E) embeddings."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.method_trains()):
            out = self.backbone(wav, lengths)
        return self.backend(out.hidden_states, out.mask, post_aggregate=self._post_aggregate())

    @torch.no_grad()
    def embed(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings in eval mode without autograd; restores the previous mode. (B, S) -> (B, E)."""
        was = self.training
        self.eval()
        try:
            return self(wav, lengths)
        finally:
            self.train(was)

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """What training may change: the method's own parameters and the back-end's (names prefixed)."""
        out = {f"method.{n}": p for n, p in self.method.own_parameters().items()}
        out.update({f"backend.{n}": p for n, p in self.backend.named_parameters()})
        return out


def _adapts_aggregate(method: Method, hidden_size: int) -> bool:
    """Whether ``method.adapt_aggregate`` does anything (an explicit ``adapts_aggregate`` attribute
    wins; otherwise a probe: the identity returns its input object). Back-ends without a layer sum reject
    a ``post_aggregate``, so the identity is not passed on."""
    flag = getattr(method, "adapts_aggregate", None)
    if flag is not None:
        return bool(flag)
    own = method.own_parameters()
    device = next(iter(own.values())).device if own else torch.device("cpu")
    probe = torch.zeros(1, 1, hidden_size, device=device)
    with torch.no_grad():
        return method.adapt_aggregate(probe, torch.ones(1, 1, dtype=torch.bool, device=device)) is not probe


def freeze_all_but(model: nn.Module, keep: dict[str, nn.Parameter]) -> None:
    """requires_grad False on every parameter of ``model`` not in ``keep`` (by identity), True on those."""
    ids = {id(p) for p in keep.values()}
    for p in model.parameters():
        p.requires_grad_(id(p) in ids)


def _load_backbone(backbone_cfg: BackboneConfig, seed: int) -> SpeechBackbone:
    from spkpeft.backbones import load_backbone

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return load_backbone(
            backbone_cfg.name_or_path,
            normalize_wav=backbone_cfg.normalize_wav,
            attn_implementation=getattr(backbone_cfg, "attn_implementation", "sdpa"),
            **dict(backbone_cfg.config_overrides),
        )


def _build_backend(backend_cfg: BackendConfig, backbone: SpeechBackbone) -> nn.Module:
    from spkpeft.backends import BACKENDS

    n, d = backbone.num_layers + 1, backbone.hidden_size
    return BACKENDS.build(backend_cfg.name, backend_cfg, num_states=n, hidden_size=d)


def build_speaker_model(
    backbone_cfg: BackboneConfig, method_cfg: MethodConfig, backend_cfg: BackendConfig, seed: int = 0
) -> SpeakerModel:
    """A speaker model from its three sections (of an experiment: ``spkpeft.train.experiment.build_model``).

    Random initialisation (preset backbones, method modules, back-end) is seeded from
    ``backbone_cfg.init_seed`` (default ``seed``, which is then recorded as the init seed) without touching
    the global RNG, so every process of a distributed run, and a resumed run, builds the same model.
    """
    from spkpeft.methods import METHODS

    seed = backbone_cfg.init_seed if backbone_cfg.init_seed is not None else seed
    resolved = resolve_backbone_path(backbone_cfg)
    _warn_random_preset(resolved.name_or_path)
    backbone = _load_backbone(resolved, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        method = METHODS.build(method_cfg.name, method_cfg, backbone)
        backend = _build_backend(backend_cfg, backbone)
    model = SpeakerModel(backbone, method, backend, resolved, backend_cfg)
    freeze_all_but(model, model.trainable_parameters())
    if backbone_cfg.init_seed is None:
        model.backbone_cfg = dataclasses.replace(resolved, init_seed=seed)
    return model


def resolve_backbone_path(backbone_cfg: BackboneConfig) -> BackboneConfig:
    """``backbone_cfg`` with a relative local ``name_or_path`` made absolute, so that a run (its
    config.yaml and model.json) loads the same backbone from any working directory. Presets and hub ids
    (no such local path) are returned unchanged."""
    from spkpeft.backbones.presets import PRESETS

    name = backbone_cfg.name_or_path
    if name in PRESETS or Path(name).is_absolute() or not Path(name).exists():
        return backbone_cfg
    return dataclasses.replace(backbone_cfg, name_or_path=str(Path(name).resolve()))


def _warn_random_preset(name: str) -> None:
    """A preset of a published model (``wavlm-base-plus``) is its architecture with random weights."""
    from spkpeft.backbones.presets import PRESETS

    hub_id = PRESETS[name].hub_id if name in PRESETS else None
    if hub_id:
        log.warning(
            "backbone %r is a preset: the %s architecture with RANDOM weights, not the pre-trained model. "
            "For the pre-trained weights set backbone.name_or_path=%s (needs the network or the Hugging "
            "Face cache) or a local directory written by save_pretrained (docs/train.md, 'Pre-trained "
            "weights')",
            name, hub_id, hub_id,
        )  # fmt: skip


def save_model(model: SpeakerModel, directory: str | Path) -> Path:
    """Write the inference model (see the module docstring for the layout); returns ``directory``."""
    from spkpeft.methods.io import save_method

    if model.backbone_cfg is None or model.backend_cfg is None:
        raise ValueError(
            "save_model needs model.backbone_cfg (a BackboneConfig naming the backbone) and "
            "model.backend_cfg; build the model with build_speaker_model or pass them to SpeakerModel"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_method(model.method, directory / "method")
    state = {k: v.detach().cpu().contiguous() for k, v in model.backend.state_dict().items()}
    save_file(state, str(directory / "backend.safetensors"))
    meta = {
        "format": MODEL_FORMAT,
        "backbone": to_dict(model.backbone_cfg),
        "backend": to_dict(model.backend_cfg),
        "embed_dim": model.embed_dim,
        "method": model.method.name,
    }
    (directory / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    log.info("saved speaker model to %s", directory)
    return directory


def default_device() -> str:
    """``cuda`` when a GPU is available, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def run_dir_of(model_dir: Path) -> Path | None:
    """The training run holding ``model_dir`` (``RUN/model`` beside ``RUN/config.yaml``), else None."""
    parent = model_dir.parent
    return parent if model_dir.name == "model" and (parent / "config.yaml").is_file() else None


def model_dir_of(run_or_dir: str | Path) -> Path:
    """The saved-model directory (with ``model.json``) of a run directory or of the model itself."""
    p = Path(run_or_dir)
    for cand in (p, p / "model"):
        if (cand / "model.json").is_file():
            return cand
    raise FileNotFoundError(
        f"{p} is neither a saved speaker model (model.json) nor a run directory with model/model.json"
    )


def _backbone_source(directory: Path, backbone_cfg: BackboneConfig) -> BackboneConfig:
    """``backbone_cfg`` with ``name_or_path`` resolved for the model in ``directory``.

    A relative path that stays inside the model directory and holds a ``config.json`` is loaded from
    there (an export ships ``backbone/``). A path leading out of it (``../x``) is never looked up through
    the model directory. A local directory outside the model directory (absolute, or relative to the
    working directory, as a training config gave it) is loaded with a warning naming it (logged at INFO
    for a training run's ``model/``): that model is not self-contained (``spkpeft export`` makes one
    that is).
    """
    from spkpeft.backbones.presets import PRESETS

    name = str(backbone_cfg.name_or_path)
    if name in PRESETS:
        return backbone_cfg
    root = os.path.normpath(directory.absolute())
    local = os.path.normpath(directory.absolute() / name)
    if local.startswith(root + os.sep) and (Path(local) / "config.json").is_file():
        return dataclasses.replace(backbone_cfg, name_or_path=local)
    if Path(name).exists():
        in_run = run_dir_of(directory) is not None  # RUN/model names the training backbone
        log.log(
            logging.INFO if in_run else logging.WARNING,
            "model %s is not self-contained: its backbone is loaded from %s, outside the model directory "
            "(model.json backbone.name_or_path = %r)",
            directory,
            Path(name).resolve(),
            name,
        )
    else:
        log.info("model %s loads its backbone %r as a hub id (not a local directory)", directory, name)
    return backbone_cfg


def load_speaker_model(run_or_dir: str | Path, device: str | torch.device | None = None) -> SpeakerModel:
    """Load a model written by :func:`save_model` (or the ``model/`` of a run dir), in eval mode.

    Use :meth:`SpeakerModel.embed` (no autograd) for inference."""
    from spkpeft.backends import BACKENDS
    from spkpeft.methods.io import load_method

    directory = model_dir_of(run_or_dir)
    meta = json.loads((directory / "model.json").read_text())
    if meta.get("format") != MODEL_FORMAT:
        raise ValueError(f"{directory}/model.json has format {meta.get('format')}, expected {MODEL_FORMAT}")
    backbone_cfg = parse(BackboneConfig, meta["backbone"], "model.json backbone")
    backend_cfg = parse_named(BACKENDS, meta["backend"], "model.json backend")
    backbone_cfg = _backbone_source(directory, backbone_cfg)
    backbone = _load_backbone(backbone_cfg, backbone_cfg.init_seed or 0)
    method = load_method(directory / "method", backbone)
    backend = _build_backend(backend_cfg, backbone)
    backend.load_state_dict(load_file(str(directory / "backend.safetensors")))
    model = SpeakerModel(backbone, method, backend, backbone_cfg, backend_cfg)
    freeze_all_but(model, model.trainable_parameters())  # as built: it can be fine-tuned or saved again
    if device is not None:
        model.to(device)
    return model.eval()
