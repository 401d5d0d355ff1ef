"""The package's rooms: cores below shells, no import loops. Read from the source (ast), so a lazy
import inside a function counts as much as one at the top; `if TYPE_CHECKING:` imports do not."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "src" / "kuavo_rl"
SHELLS = {"kuavo_rl.cli", "kuavo_rl.supervisor", "kuavo_rl.inprocess", "kuavo_rl.launch_plan",
          "kuavo_rl.launch_description", "kuavo_rl.kuavo.ros2_link"}
SHELL_PACKAGES = ("kuavo_rl.nodes", "kuavo_rl.diagnostics")
# The modules every other one builds on import nothing of the stack but what is listed.
FOUNDATIONS = {"kuavo_rl.protocol": set(), "kuavo_rl.envs.registry": set(), "kuavo_rl.topics": set(),
               "kuavo_rl.qos": set(), "kuavo_rl.kuavo.settings": set(),
               "kuavo_rl.config": {"kuavo_rl.envs", "kuavo_rl.envs.registry", "kuavo_rl.kuavo", "kuavo_rl.kuavo.settings"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(tree: ast.AST, known: set[str], importer: str) -> set[str]:
    """kuavo_rl modules imported anywhere in the tree, plus the packages their import runs (except
    the importer's own packages, which are already running)."""
    found = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if is_type_checking_block(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name in known:
                parts = name.split(".")
                found.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
    own_packages = {importer.rsplit(".", i)[0] for i in range(1, importer.count(".") + 1)}
    return (found & known) - own_packages


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE_ROOT.joinpath("kuavo_rl").rglob("*.py")}
    known = set(files)
    return {name: imported_modules(ast.parse(path.read_text()), known, name) - {name} for name, path in files.items()}


def is_shell(name: str) -> bool:
    return name in SHELLS or name.startswith(SHELL_PACKAGES)


def test_the_graph_sees_the_modules():
    graph = import_graph()
    assert "kuavo_rl.learner_core" in graph["kuavo_rl.learner_loop"]
    assert "kuavo_rl.protocol" in graph["kuavo_rl.codec"]
    assert len(graph) > 30


@pytest.mark.parametrize("module,allowed", sorted(FOUNDATIONS.items()))
def test_foundations_import_nothing_above_them(module, allowed):
    assert import_graph()[module] <= allowed


def test_cores_import_no_shell():
    graph = import_graph()
    offenders = {name: sorted(filter(is_shell, deps)) for name, deps in graph.items()
                 if not is_shell(name) and any(map(is_shell, deps))}
    assert offenders == {}


def test_no_import_loops():
    graph = import_graph()
    state: dict[str, str] = {}
    loops = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                loops.append(path[path.index(dep):] + [dep] if dep in path else [name, dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[name] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert loops == []
