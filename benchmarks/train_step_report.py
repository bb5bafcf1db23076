"""The tables of ``train_step.py``: markdown per backbone, and merging result files of several runs."""

from __future__ import annotations

import json
from pathlib import Path


def _settings_note(settings: dict | None) -> str:
    if not settings:
        return ""
    return (
        " Method settings (where a method has the key): "
        + ", ".join(f"{k} {v}" for k, v in settings.items())
        + "."
    )


COLUMNS = (
    "| method | method params | % of backbone | trainable (incl. back-end) | x full | step s | x full "
    "| peak MiB | x full | GFLOP/step | MFU % | infer ms | x frozen | merged x frozen |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
)


def _cells(r: dict) -> list[str]:
    def num(key: str, fmt: str, scale: float | None = None) -> str:
        if key not in r:
            return "-"
        return format(r[key] if scale is None else r[key] * scale, fmt)

    return [
        r["method"],
        num("method_params", ","),
        num("pct_backbone_updated", ".2f"),
        f"{r['trainable_params']:,}",
        num("params_vs_full", ".4f"),
        f"{r['step_s']:.3f}",
        num("time_vs_full", ".2f"),
        f"{r['peak_mem_bytes'] / 2**20:.0f}",
        num("mem_vs_full", ".2f"),
        f"{r['flops_per_step'] / 1e9:.1f}",
        f"{100 * r['mfu']:.1f}",
        num("infer_s", ".1f", 1e3),
        num("infer_vs_frozen", ".2f"),
        num("infer_merged_vs_frozen", ".2f"),
    ]


def markdown(rows: list[dict], meta: dict) -> str:
    m = meta
    out = [
        f"# Training step per method ({', '.join(m['backbones'])}, random weights)\n",
        f"Device {m['device']} ({m['device_name']}), batch {m['batch_size']} x {m['crop_seconds']} s, "
        f"median of {m['steps']} timed steps after warm-up, AMP {m['amp']}, back-end {m['backend']}, "
        f"AAM over {m['classes']} classes, attention {m['attention']}, compile {m['compile']}, "
        f"checkpoint_layers {m['checkpoint_layers']}, torch {m['torch']}, transformers {m['transformers']}, "
        f"peft {m['peft']}. Peak memory: {m['memory']}. MFU: FLOPs counted by FlopCounterMode over one "
        f"eager step (forward + backward) / step time / {m['peak_flops'] / 1e12:.3g} TFLOP/s measured "
        f"({m['peak_kind']}). Inference: no-grad eval forward of the speaker model, x frozen = its time "
        f"over the frozen backbone's; merged: the method folded into the weights."
        f"{_settings_note(m.get('method_settings'))}\n",
    ]
    for backbone in m["backbones"]:
        part = [r for r in rows if r["backbone"] == backbone]
        lines = ["| " + " | ".join(_cells(r)) + " |" for r in part]
        out.append(f"## {backbone}\n\n" + COLUMNS + "\n".join(lines) + "\n")
    return "\n".join(out)


def merge_results(stems: list[Path]) -> None:
    """Append the rows of the 2nd, 3rd, ... result files to the first (meta of the first, backbones of
    all) and delete the others; missing files are skipped (a pass that timed out)."""
    found = [s for s in stems if s.parent.joinpath(s.name + ".json").is_file()]
    if not found:
        raise SystemExit(f"--merge: none of {[str(s) + '.json' for s in stems]} exists")
    parts = [json.loads(s.parent.joinpath(s.name + ".json").read_text()) for s in found]
    meta = {**parts[0]["meta"], "backbones": [b for part in parts for b in part["meta"]["backbones"]]}
    rows = [r for part in parts for r in part["rows"]]
    first = stems[0]
    first.parent.joinpath(first.name + ".json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n"
    )
    first.parent.joinpath(first.name + ".md").write_text(markdown(rows, meta))
    for s in found:
        if s != first:
            for suffix in (".json", ".md"):
                s.parent.joinpath(s.name + suffix).unlink(missing_ok=True)
