"""End-to-end training on the tiny config: resume exactness, stages, NaN stop, logs, run layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from spkpeft.train import checkpoint as ck
from spkpeft.train.experiment import load_experiment
from spkpeft.train.metrics_log import read_metrics
from spkpeft.train.trainer import NonFiniteLossError, RunExistsError, Trainer, train

TWO_STAGES = [
    # LAP+ASTP: dropout and frame masking draw random numbers every step, batch norms keep running stats
    "backend={name: lap_astp, channels: 16, heads: 4, embed_dim: 16}",
    "train.checkpoint_every=2",
    "train.log_every=1",
    "train.keep_checkpoints=0",
    "train.epochs=1",
    "optim.lr.lora=1.0e-3",  # valid in the frozen stage too: the trainer knows every declared group
    "stages=[{name: warm, trainable: [backend, loss], margin_warmup_end: 0.5},"
    " {name: joint, method: {name: lora, r: 2}, optim: {lr: {default: 1.0e-3}}, loss: {margin: 0.3}}]",
]


class Interrupt(Exception):
    pass


def _killer(at: int):
    def on_step(step: int, loss: float) -> None:
        if step == at:
            raise Interrupt(f"killed after step {step}")

    return on_step


def _final_tensors(run: Path) -> dict[str, torch.Tensor]:
    out = {f"backend/{k}": v for k, v in load_file(str(run / "model" / "backend.safetensors")).items()}
    out.update({f"method/{k}": v for k, v in load_file(str(run / "model/method/method.safetensors")).items()})
    last = ck.load_checkpoint(ck.latest_checkpoint(run / "checkpoints"))
    out.update({f"ckpt/{k}": v for k, v in last["trainable"].items()})
    return out


def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tiny_yaml, tiny_corpus, tmp_path):
    def cfg(name: str):
        where = [f"data.train_manifest={tiny_corpus}", f"train.output_dir={tmp_path / name}"]
        return load_experiment(tiny_yaml, [*where, *TWO_STAGES])

    ref = _final_tensors(train(cfg("ref")))
    assert any(k.startswith("method/lora") for k in ref)  # stage 2 switched frozen -> lora
    from spkpeft.train.experiment import build_model

    init = build_model(cfg("init")).backend.state_dict()
    assert all(not torch.equal(ref[f"backend/{k}"], v) for k, v in init.items())  # training moved them
    for kill_at in (3, 5):  # 3: inside stage 1 (last checkpoint step-2); 5: inside stage 2 (step-4)
        name = f"killed{kill_at}"
        with pytest.raises(Interrupt):
            train(cfg(name), on_step=_killer(kill_at))
        assert not (tmp_path / name / "model").exists()
        with pytest.raises(RunExistsError, match="--resume"):
            train(cfg(name))
        got = _final_tensors(train(cfg(name), resume=True))
        steps = [r["step"] for r in read_metrics(tmp_path / name / "logs" / "metrics.jsonl")]
        assert steps == list(range(1, 7))  # rows logged after the last checkpoint were dropped
        assert got.keys() == ref.keys()
        for k, v in ref.items():
            assert torch.equal(got[k], v), f"{k} differs after resuming a run killed at step {kill_at}"
    rows = read_metrics(tmp_path / "ref" / "logs" / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 7))
    warm = [r["margin"] for r in rows if r["stage"] == 0]
    assert warm[0] < warm[-1] == pytest.approx(0.2)  # margin warm-up within stage 1
    assert all(r["margin"] == pytest.approx(0.3) for r in rows if r["stage"] == 1)
    assert "lr/lora" in rows[-1] and "lr/lora" not in rows[0] and "layer_weight/0" in rows[0]


def test_frozen_stage_keeps_backbone_and_runs_it_without_autograd(tiny_yaml, tiny_overrides):
    cfg = load_experiment(tiny_yaml, [*tiny_overrides, "method.name=full", "train.epochs=1",
                                 "stages=[{trainable: [backend, loss]}]"])  # fmt: skip
    trainer = Trainer(cfg)
    grad_modes = []
    orig = trainer._enter_stage

    def spy(*a, **k):
        tm, sm = orig(*a, **k)
        tm.model.backbone.register_forward_hook(
            lambda m, i, o: grad_modes.append(o.hidden_states.requires_grad)
        )
        spy.tm = tm
        return tm, sm

    trainer._enter_stage = spy
    run = trainer.run()
    tm = spy.tm
    assert grad_modes and not any(grad_modes)
    fresh = load_experiment(tiny_yaml, tiny_overrides)
    from spkpeft.train.experiment import build_model

    ref = build_model(fresh)
    for (n, p), (_, q) in zip(tm.model.backbone.named_parameters(), ref.backbone.named_parameters()):
        assert torch.equal(p, q), f"frozen backbone parameter {n} changed"
    from spkpeft.model import load_speaker_model

    loaded = load_speaker_model(run)  # `full` saved all backbone weights though its last stage froze them
    assert loaded.method.name == "full" and len(loaded.method.own_parameters()) > 10


def test_non_finite_loss_stops_naming_step_and_checkpoint(tiny_yaml, tiny_overrides):
    cfg = load_experiment(tiny_yaml, [*tiny_overrides, "train.checkpoint_every=2"])
    trainer = Trainer(cfg)
    calls = {"n": 0}
    orig = trainer._enter_stage

    def poison(*a, **k):
        tm, sm = orig(*a, **k)

        def hook(module, inputs, output):
            calls["n"] += 1
            return output * float("nan") if calls["n"] == 3 else output

        tm.model.backend.register_forward_hook(hook)
        return tm, sm

    trainer._enter_stage = poison
    with pytest.raises(NonFiniteLossError, match=r"step 3 .*last good checkpoint: .*step-2"):
        trainer.run()


def test_run_layout_and_train_checks_paths(tiny_yaml, tiny_overrides, tmp_path):
    run = train(load_experiment(tiny_yaml, [*tiny_overrides, "train.epochs=1", "train.tensorboard=true"]))
    for rel in ("config.yaml", "speakers.json", "model/model.json", "logs/metrics.jsonl"):
        assert (run / rel).is_file(), rel
    assert list((run / "logs" / "tb").iterdir())
    assert load_experiment(run / "config.yaml").train.epochs == 1  # the resolved config reloads
    missing = tmp_path / "nowhere.jsonl.gz"
    cfg = load_experiment(tiny_yaml, [f"data.train_manifest={missing}", f"train.output_dir={tmp_path / 'x'}"])
    with pytest.raises(FileNotFoundError, match=r"data.train_manifest .*nowhere.jsonl.gz"):
        train(cfg)


def test_grad_accumulation_equals_the_larger_batch(tiny_yaml, tiny_overrides, tmp_path):
    common = [*tiny_overrides[:1], "train.epochs=1", "train.checkpoint_every=0", "train.clip_grad_norm=1.0"]
    big = train(
        load_experiment(tiny_yaml, [*common, "train.batch_size=4", f"train.output_dir={tmp_path / 'a'}"])
    )
    acc = train(load_experiment(tiny_yaml, [*common, "train.batch_size=2", "train.grad_accum=2",
                                            f"train.output_dir={tmp_path / 'b'}"]))  # fmt: skip
    a = load_file(str(big / "checkpoints/step-3/trainable.safetensors"))
    b = load_file(str(acc / "checkpoints/step-3/trainable.safetensors"))
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_unipet_gates_are_logged_and_bf16_autocast_runs(tiny_yaml, tiny_overrides):
    over = [*tiny_overrides, "train.epochs=1", "method.name=unipet", "method.prompt_length=2",
            "method.bottleneck=8", "train.mixed_precision=bf16",
            "optim.lr={adapter: 1e-3, gate: 1e-3, default: 5e-3}"]  # fmt: skip
    run = train(load_experiment(tiny_yaml, over))
    rows = read_metrics(run / "logs" / "metrics.jsonl")
    gates = [k for k in rows[-1] if k.startswith("gate")]
    assert len(gates) >= 4, rows[-1].keys()  # adapter and prompt gate per layer (2 layers)
    assert all(0 < rows[-1][k] < 1 for k in gates)
    assert {"lr/adapter", "lr/gate", "lr/prompt", "lr/backend", "lr/loss"} <= rows[0].keys()
    assert rows[0]["lr/adapter"] < rows[0]["lr/prompt"]


def test_cli_train_and_print_config(tiny_overrides, capsys):
    from spkpeft.cli import main

    assert main(["train", "tiny", "--print-config", "--set", "train.epochs=3"]) == 0
    assert "epochs: 3" in capsys.readouterr().out
    args = ["train", "tiny", "--set", "train.epochs=1"] + [x for o in tiny_overrides for x in ("--set", o)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "run finished" in out
    assert main(["train", "tiny", "--set", "train.epochz=1"]) == 1
    assert "epochz" in capsys.readouterr().err


@pytest.mark.gpu
def test_bf16_training_on_cuda(tiny_yaml, tiny_overrides):
    over = [*tiny_overrides, "train.epochs=1", "method.name=unipet", "method.prompt_length=2",
            "method.bottleneck=8", "train.mixed_precision=bf16"]  # fmt: skip
    run = train(load_experiment(tiny_yaml, over))
    rows = read_metrics(run / "logs" / "metrics.jsonl")
    assert rows and all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    from spkpeft.model import load_speaker_model

    model = load_speaker_model(run, device="cuda")
    assert model.embed(torch.randn(2, 8000, device="cuda")).isfinite().all()


def test_w2v_bert_lora_then_full_with_adapter_mfa_trains_and_loads(tiny_yaml, tiny_overrides):
    """The w2vbert_lora_vox2 recipe's shape on tiny models: LoRA stage, merged, then full fine-tuning."""
    settings = [
        "backbone.name_or_path=tiny-w2v-bert",
        "method={name: lora, r: 2, targets: [q, v]}",
        "backend={name: adapter_mfa, adapter_dim: 8, embed_dim: 16}",
        "train.epochs=1",
        "train.log_every=1",
        "stages=[{name: lora}, {name: joint, method: {name: full}}]",
    ]
    cfg = load_experiment(tiny_yaml, [*tiny_overrides, *settings])
    run = train(cfg)
    rows = read_metrics(run / "logs" / "metrics.jsonl")
    assert {r["stage"] for r in rows} == {0, 1} and all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    from spkpeft.model import load_speaker_model

    model = load_speaker_model(run)
    assert model.method.name == "full" and model.backbone.spec.name == "w2v-bert-2.0"
    emb = model.embed(torch.randn(2, 8000), torch.tensor([8000, 6000]))
    assert emb.shape == (2, 16) and torch.isfinite(emb).all()
