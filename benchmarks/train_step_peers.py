"""The hand-written peers of ``train_step.py``: what a user writes with transformers (and peft) alone.

- ``hf_full``: the transformers encoder of the same preset called directly
  (``model(input_values, output_hidden_states=True)``), feature encoder frozen, everything else trained.
- ``hf_peft_lora``: the same with peft's LoRA (r 16, alpha 16) injected into ``q_proj``/``k_proj``/
  ``v_proj`` by ``peft.inject_adapter_in_model``. On WavLM transformers' attention reads
  ``q_proj.weight`` directly, so the injected layers are never called: this row trains nothing inside the
  Transformer and its FLOPs are the frozen backbone's (spkpeft routes WavLM's attention through the
  modules, see ``spkpeft.backbones.projections``).

Both use the transformers model's own attention kernel (eager for WavLM), in eval mode (no dropout or
LayerDrop, as spkpeft's ``backbone.train_mode: false``), with spkpeft's back-end and AAM head on the
stacked hidden states, so the rows differ from spkpeft's only in the backbone part. Only the
wav2vec2-line families (waveform input) have peers here.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable

import torch
from torch import nn

WAVEFORM_FAMILIES = ("wavlm", "hubert", "wav2vec2")


def has_peers(backbone: str) -> bool:
    """Whether ``backbone`` (a preset name) is a waveform family with peer rows."""
    from spkpeft.backbones.presets import preset

    return preset(backbone).family in WAVEFORM_FAMILIES


def build_peer(
    name: str, args: Namespace
) -> tuple[nn.Module, torch.optim.Optimizer, Callable[[], torch.Tensor]]:
    """(module holding everything, Adam over its trainable parameters, loss function) for peer ``name``."""
    from train_step_measure import backend_and_head, batch  # benchmarks/ is on sys.path

    from spkpeft.backbones.hf import load_hf_model

    dev = torch.device(args.device)
    model, _ = load_hf_model(args.backbone)
    model.requires_grad_(False)
    if name == "hf_full":
        for n, p in model.named_parameters():
            p.requires_grad_(not n.startswith(("feature_extractor.", "masked_spec_embed", "adapter.")))
    elif name == "hf_peft_lora":
        from peft import LoraConfig, inject_adapter_in_model

        cfg = LoraConfig(r=16, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj"], bias="none")
        model = inject_adapter_in_model(cfg, model)
    else:
        raise ValueError(f"unknown peer {name!r}; valid: hf_full, hf_peft_lora")
    model.eval()  # no dropout / LayerDrop, as spkpeft's default backbone.train_mode: false
    backend, head = backend_and_head(args, model.config.num_hidden_layers + 1, model.config.hidden_size)
    module = nn.ModuleDict({"model": model, "backend": backend, "head": head}).to(dev)
    wav, _, labels = batch(args, dev)

    def loss() -> torch.Tensor:
        states = torch.stack(module["model"](input_values=wav, output_hidden_states=True).hidden_states)
        mask = torch.ones(states.shape[1:3], dtype=torch.bool, device=dev)
        return module["head"](module["backend"](states, mask), labels).loss

    params = [p for p in module.parameters() if p.requires_grad]
    return module, torch.optim.Adam(params, lr=1e-4), loss
