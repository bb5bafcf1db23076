"""The import graph of ``src/spkpeft`` (read with ``ast``; every import counts, lazy and type-only ones
too) has no cycle between packages or between files, and evaluation depends one way down:
command -> eval pipeline -> model, scorer, data."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import spkpeft

ROOT = Path(spkpeft.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The spkpeft modules ``name`` imports (``from pkg import sub`` names the submodule)."""

    def known(mod: str) -> str:
        while mod not in modules:
            mod = mod.rpartition(".")[0]
        return mod

    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {known(a.name) for a in node.names if a.name.split(".")[0] == "spkpeft"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "spkpeft":
            assert node.level == 0, f"{path}: relative import"
            out |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else known(node.module)
                    for a in node.names}  # fmt: skip
    return out - {name}


def _graph(level: str) -> dict[str, set[str]]:
    """File graph, or package graph (``spkpeft.<package or top-level module>``)."""
    modules = _modules()
    files = {name: _imports(name, path, modules) for name, path in modules.items()}
    if level == "file":
        return files
    top = lambda m: ".".join(m.split(".")[:2])  # noqa: E731
    graph: dict[str, set[str]] = {}
    for name, deps in files.items():
        graph.setdefault(top(name), set()).update(top(d) for d in deps if top(d) != top(name))
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle (a path whose last node imports its first), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep) :] if dep in path else [*path, dep]
            if dep not in state and (found := visit(dep, [*path, dep])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_the_graph_is_read() -> None:
    files, packages = _graph("file"), _graph("package")
    assert "spkpeft.eval.scorer" in files["spkpeft.eval.pipeline"]
    assert "spkpeft.model" in packages["spkpeft.eval"] and "spkpeft.eval" in packages["spkpeft.train"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c"]


def test_no_cycle_between_packages() -> None:
    cycle = _cycle(_graph("package"))
    assert cycle is None, "package import cycle: " + " -> ".join([*cycle, cycle[0]])


def test_no_cycle_between_files() -> None:
    cycle = _cycle(_graph("file"))
    assert cycle is None, "file import cycle: " + " -> ".join([*cycle, cycle[0]])


def test_evaluation_goes_one_way_down() -> None:
    packages = _graph("package")
    above = {"spkpeft.api", "spkpeft.cli", "spkpeft.commands", "spkpeft.demo",
             "spkpeft.inference", "spkpeft.train", "spkpeft.tsasr"}  # fmt: skip
    for lower in ("spkpeft.eval", "spkpeft.model", "spkpeft.data"):
        assert not packages[lower] & above, f"{lower} imports {sorted(packages[lower] & above)}"
    assert not packages["spkpeft.model"] & {"spkpeft.eval"}
    for user in ("spkpeft.api", "spkpeft.inference", "spkpeft.commands"):
        assert "spkpeft.eval" in packages[user], user  # they use the one scorer and extraction


def test_reading_a_runs_eval_section_loads_no_registry(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "method: {name: lora, r: 4}\nloss: {name: aam}\ndata: {train_manifest: t.jsonl.gz}\n"
        "eval: {top_k: 7, trials: [a.txt]}\n"
    )
    code = (
        "import sys; from spkpeft.eval.config import run_eval_config; "
        f"cfg, train = run_eval_config({str(tmp_path)!r}); "
        "print(cfg.top_k, cfg.trials, train, [m for m in ('spkpeft.methods', 'spkpeft.losses', "
        "'spkpeft.backends') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["7", "['a.txt']", "t.jsonl.gz", "[]"]
