"""The experiment config: every shipped recipe validates (without its data), errors name the key."""

from __future__ import annotations

import pytest

from spkpeft.config import ConfigError
from spkpeft.train.experiment import RECIPES, list_recipes, load_experiment, recipe_path, resolve_stages

EXPECTED = {
    "tiny",
    "unipet_wavlm_base_plus_vox2",
    "inner_inter_wavlm_base_plus_vox2",
    "deep_prompt_wavlm_base_plus_vox2",
    "spectral_wavlm_large_vox1",
    "lora_wavlm_large_vox1",
    "dora_wavlm_large_vox1",
    "lap_astp_wavlm_large_vox2",
    "mhfa_wavlm_base_plus_vox2",
    "w2vbert_lora_vox2",
}


def test_recipe_set_is_complete():
    assert EXPECTED <= set(list_recipes())


@pytest.mark.parametrize("name", sorted(p.stem for p in RECIPES.glob("*.yaml")))
def test_every_recipe_validates_without_its_data(name, tmp_path):
    from spkpeft.config import save_yaml

    cfg = load_experiment(RECIPES / f"{name}.yaml")
    save_yaml(cfg, tmp_path / "resolved.yaml")  # what a run writes to RUN/config.yaml
    assert load_experiment(tmp_path / "resolved.yaml") == cfg
    stages = resolve_stages(cfg)
    assert stages and all(s.epochs >= 1 for s in stages)
    assert cfg.method.name and cfg.backend.name and cfg.loss.name


def test_paper_settings_of_key_recipes():
    uni = load_experiment("unipet_wavlm_base_plus_vox2")
    assert (uni.method.name, uni.method.prompt_length, uni.method.bottleneck) == ("unipet", 30, 256)
    assert uni.optim.lr["adapter"] == uni.optim.lr["gate"] == 1e-4
    assert uni.optim.lr["prompt"] == uni.optim.lr["backend"] == 5e-4
    sp = load_experiment("spectral_wavlm_large_vox1")
    assert (sp.method.k, sp.method.r, sp.backend.name, sp.loss.margin, sp.loss.scale) == (
        256,
        16,
        "ecapa_tdnn",
        0.2,
        30,
    )
    assert (sp.data.crop_seconds, sp.train.batch_size) == (2.0, 256)
    lap = resolve_stages(load_experiment("lap_astp_wavlm_large_vox2"))
    assert [s.method.name for s in lap] == ["frozen", "full", "full"]
    assert [s.epochs for s in lap[:2]] == [40, 10]
    assert lap[0].optim.lr["default"] == 1e-3 and lap[0].optim.warmup_fraction == 0.1
    assert lap[1].optim.lr["default"] == 5e-5 and lap[1].optim.final_lr_ratio == pytest.approx(0.1)
    assert (lap[2].data.crop_seconds, lap[2].loss.margin, lap[0].loss.margin) == (6.0, 0.5, 0.3)
    assert lap[0].loss.subcenters == 3 and lap[0].loss.topk == 5 and lap[0].data.speed_perturb
    assert lap[2].data.speed_perturb  # stage overrides merge over the top-level section
    w2v = resolve_stages(load_experiment("w2vbert_lora_vox2"))  # WeSpeaker's w2vbert_s{1,2,3} confs
    m = w2v[0].method
    assert (m.name, m.r, m.alpha, m.targets, m.dropout) == ("lora", 64, 128.0, ["q", "v"], 0.0)
    assert [s.method.name for s in w2v] == ["lora", "full", "full"] and [s.epochs for s in w2v] == [15, 4, 2]
    assert [s.optim.lr["default"] for s in w2v] == [1e-4, 1e-5, 1e-5] and w2v[0].optim.optimizer == "adamw"
    assert [s.loss.margin for s in w2v] == [0.2, 0.2, 0.5] and w2v[0].loss.scale == 32.0
    assert [s.batch_size for s in w2v] == [64, 64, 32] and w2v[2].data.crop_seconds == 6.0


def test_errors_name_the_key_and_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"train.*'epoks'.*valid keys.*epochs"):
        load_experiment("tiny", ["train.epoks=3"])
    with pytest.raises(ConfigError, match=r"train.epochs"):
        load_experiment("tiny", ["train.epochs=many"])
    with pytest.raises(ConfigError, match=r"method.name='unipt' is unknown; valid names: .*unipet"):
        load_experiment("tiny", ["method.name=unipt"])
    with pytest.raises(ConfigError, match=r"unknown config section.*'optimiser'.*optim"):
        load_experiment("tiny", ["optimiser.lr=1"])
    with pytest.raises(ConfigError, match=r"stages\[0\].optim.*'lrr'"):
        load_experiment("tiny", ["stages=[{optim: {lrr: 1}}]"])
    with pytest.raises(ConfigError, match=r"stages\[1\].data.crop_seconds must be > 0"):
        load_experiment("tiny", ["stages=[{}, {data: {crop_seconds: -1}}]"])
    with pytest.raises(ConfigError, match="loss.name cannot change"):
        load_experiment("tiny", ["stages=[{loss: {name: softmax}}]"])
    with pytest.raises(ConfigError, match="mixed_precision"):
        load_experiment("tiny", ["train.mixed_precision=fp8"])
    with pytest.raises(ConfigError, match="schedule"):
        load_experiment("tiny", ["optim.schedule=step"])
    with pytest.raises(ConfigError, match="neither a file nor a recipe.*tiny"):
        recipe_path(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "override,match",
    [
        ("train.epochs=[1,2", r"override 'train.epochs=\[1,2': the value '\[1,2' is not valid YAML"),
        ("backbone=3", r"backbone must be a section \(key: value pairs\), got 3"),
        ("method=7", r"method must be a section"),
        ("train.output_dir=", r"train.output_dir='' is empty .*current directory"),
    ],
)
def test_malformed_overrides_are_errors_not_tracebacks(override, match, tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError, match=match):
        load_experiment("tiny", [override])
    monkeypatch.chdir(tmp_path)
    from spkpeft.cli import main

    assert main(["train", "tiny", "--set", override]) == 1
    assert "error:" in capsys.readouterr().err and not list(tmp_path.iterdir())  # nothing written here


def test_overrides_and_resolved_config_roundtrip(tmp_path):
    from spkpeft.config import save_yaml

    cfg = load_experiment("tiny", ["optim.lr.backend=2e-3", "method.name=unipet", "method.prompt_length=4"])
    assert cfg.optim.lr == {"default": 5e-3, "backend": 2e-3}
    assert cfg.method.prompt_length == 4 and cfg.method.bottleneck == 256  # defaults filled in
    save_yaml(cfg, tmp_path / "resolved.yaml")
    assert load_experiment(tmp_path / "resolved.yaml") == cfg
