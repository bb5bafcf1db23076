"""``train.compile`` and ``train.checkpoint_layers``: the same training steps as the plain module."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo.utils as dynamo_utils

from spkpeft.train.compile import compile_train_module
from spkpeft.train.experiment import experiment_from_dict, resolve_stages
from spkpeft.train.setup import build_train_module

# padded batches of 0.6 s crops, all cut to the same 0.5 s bucket (8000 samples)
LENGTHS = ([7900, 5000], [7700, 7600], [6100, 7999])


def _train_module(method: str, **train):  # noqa: ANN003, ANN202
    cfg = experiment_from_dict(
        {
            "backbone": {"name_or_path": "tiny-wavlm"},
            "method": {"name": method},
            "backend": {"name": "linear"},
            "loss": {"name": "aam"},
            "train": train,
        }
    )
    torch.manual_seed(0)
    return build_train_module(cfg, resolve_stages(cfg)[0], num_classes=6).train()


def _steps(tm, on_step=None) -> tuple[list[float], dict[str, torch.Tensor]]:  # noqa: ANN001
    """SGD steps on fixed padded batches; losses, then every trainable parameter after them. (SGD:
    Adam's first steps are +-lr for any gradient, whatever its rounding, so they would hide nothing.)"""
    params = {n: p for n, p in tm.named_parameters() if p.requires_grad}
    opt = torch.optim.SGD(params.values(), lr=0.5)
    g = torch.Generator().manual_seed(5)
    losses = []
    for i, lens in enumerate(LENGTHS):
        wav = torch.randn(2, 9600, generator=g)
        for row, n in enumerate(lens):
            wav[row, n:] = 0
        loss = tm(wav, torch.tensor(lens), torch.tensor([i, 5 - i])).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step is not None:
            on_step(i)
    return losses, {n: p.detach().clone() for n, p in params.items()}


def test_compiled_steps_equal_eager_steps_and_a_bucket_compiles_once() -> None:
    """UniPET-SPK (prompts, adapters and gates through backbone hooks) under torch.compile (aot_eager:
    the traced forward and backward graphs, without inductor's C++ build)."""
    eager_losses, eager_params = _steps(_train_module("unipet"))
    tm = compile_train_module(_train_module("unipet"), backend="aot_eager")
    graphs: list[int] = []
    torch._dynamo.reset()
    dynamo_utils.counters.clear()
    losses, params = _steps(tm, lambda i: graphs.append(dynamo_utils.counters["stats"]["unique_graphs"]))
    # other lengths, same bucket: no new graph after the second step (which recompiles once: the
    # methods' stats dicts are filled by the first)
    assert graphs[0] > 0 and graphs[2] == graphs[1], graphs
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(eager_losses), rtol=1e-4, atol=1e-5)
    for n, p in eager_params.items():
        torch.testing.assert_close(params[n], p, rtol=1e-3, atol=1e-5, msg=n)
    assert tm.model.backbone.length_bucket == 8000


@pytest.mark.parametrize("method", ["lora", "unipet"])
def test_checkpointed_layers_give_the_same_gradients(method: str) -> None:
    plain = _train_module(method)
    ckpt = _train_module(method, checkpoint_layers=True)
    assert ckpt.model.backbone.checkpoint_layers and not plain.model.backbone.checkpoint_layers
    wav, lengths, labels = torch.randn(2, 12000), torch.tensor([12000, 7000]), torch.tensor([1, 4])
    grads = []
    saved = []
    for tm in (plain, ckpt):
        n_saved = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal n_saved
            n_saved += t.numel()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = tm(wav, lengths, labels).loss
        loss.backward()
        grads.append({n: p.grad for n, p in tm.named_parameters() if p.requires_grad})
        saved.append(n_saved)
    assert grads[0].keys() == grads[1].keys()
    for n, g in grads[0].items():
        assert g is not None and grads[1][n] is not None, n
        torch.testing.assert_close(grads[1][n], g, rtol=1e-5, atol=1e-7, msg=n)
    assert saved[1] < saved[0]  # the checkpointed forward keeps less for the backward


def test_trainer_compiles_each_stage_and_checkpoints_layers(tiny_yaml, tiny_overrides, monkeypatch) -> None:  # noqa: ANN001
    """train.compile / train.checkpoint_layers reach the loop (dynamo's ``eager`` backend: traced, not
    built by inductor, to stay fast on a CPU)."""
    import spkpeft.train.compile as compile_mod
    from spkpeft.train.experiment import load_experiment
    from spkpeft.train.trainer import train

    seen, real = [], compile_mod.compile_train_module

    def compile_eager(tm, backend="inductor", bucket=compile_mod.LENGTH_BUCKET):  # noqa: ANN001, ANN202
        seen.append((backend, tm.model.backbone.checkpoint_layers))
        return real(tm, "eager", bucket)

    monkeypatch.setattr(compile_mod, "compile_train_module", compile_eager)
    stages = "stages=[{name: a, trainable: [backend, loss]}, {name: b, method: {name: lora, r: 2}}]"
    over = [*tiny_overrides, "train.epochs=1", "train.compile=true", "train.checkpoint_layers=true", stages]
    run = train(load_experiment(tiny_yaml, over))
    assert seen == [("inductor", True), ("inductor", True)]  # once per stage, with checkpointed layers
    assert (run / "model" / "model.json").is_file()
