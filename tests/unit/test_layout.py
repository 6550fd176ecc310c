"""The package layout shows the pipeline: each stage imports only the stages before it, there is no
import cycle between them, and imports sit at module top where the graph can be read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dmc

SRC = Path(dmc.__file__).parent

# The pipeline, lowest first. A module may import its own stage and the stages listed before it.
LAYERS = [
    "memo", "io", "settings", "data", "lab", "grading", "students", "stats", "metrics", "scoring", "selection",
    "evaluation", "curriculum", "training", "validation", "report", "demo", "cli",
]


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "dmc" and len(parts) > 1 else None


def _imports() -> list[tuple[str, str, int, bool]]:
    """(importing module, imported dmc module, line, inside a function) for every dmc import."""
    out = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        mod = ".".join(rel.parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        in_func = {id(x) for f in funcs for x in ast.walk(f)}
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name == "dmc" or name.startswith("dmc."):
                    out.append((mod, name, node.lineno, id(node) in in_func))
    return out


def test_every_stage_is_in_the_layer_list():
    stages = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
              if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert stages == set(LAYERS), "add the new stage to LAYERS, at its place in the pipeline"


def test_stages_import_only_earlier_stages():
    order = {s: i for i, s in enumerate(LAYERS)}
    bad = []
    for mod, target, line, _ in _imports():
        src, dst = _stage(mod), _stage(target)
        if src is None or dst is None or dst not in order:
            continue  # `from dmc import __version__` and the like
        if order[dst] > order[src]:
            bad.append(f"{mod}:{line} imports {target} ({dst} comes after {src})")
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_modules():
    graph: dict[str, set[str]] = {}
    modules = {m for m, *_ in _imports()}
    for mod, target, _, in_func in _imports():
        # `from dmc.x import name` names a module only when dmc.x.name is one
        dst = target if target in modules else target.rsplit(".", 1)[0] if target.rsplit(".", 1)[0] in modules else None
        if dst and dst != mod and not dst.startswith(mod + "."):
            graph.setdefault(mod, set()).add(dst)
    # packages' __init__ re-export their own modules: an edge from a module to its own package's
    # __init__ is how the package is imported, so only cycles between distinct modules count
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if seen.get(n) == 1 and not (m.startswith(n + ".") or n == m.rsplit(".", 1)[0]):
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in seen:
                visit(n)
        stack.pop()
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m)
    assert not cycles, "\n".join(cycles)


def test_dmc_imports_sit_at_module_top():
    inside = [f"{mod}:{line} imports {target}" for mod, target, line, in_func in _imports() if in_func]
    assert not inside, "\n".join(inside)


def test_dmc_help_lists_every_command_without_importing_torch():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom dmc.cli import app\n"
            "r = CliRunner().invoke(app, ['--help'])\n"
            "assert r.exit_code == 0, r.output\n"
            "print(r.output)\nprint('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("False False")
    from dmc.cli.app import COMMANDS

    for name in COMMANDS:
        assert f" {name} " in out.stdout, name


def test_every_listed_command_is_registered_by_its_module():
    import importlib

    import typer

    from dmc.cli.app import COMMANDS, app

    for name, (module, _) in COMMANDS.items():
        importlib.import_module(module)
        assert name in typer.main.get_group(app).commands, f"{module} does not register `dmc {name}`"
    assert set(typer.main.get_group(app).commands) == set(COMMANDS), "add the command to dmc.cli.app.COMMANDS"
