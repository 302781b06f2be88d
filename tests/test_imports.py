"""The dependency rule of docs/architecture.md, read from the code's own import statements.

Stages and the trainer sit above; classify, sources and pose below; nothing below imports
upward. The framework starts stages by module name (never imports them) and imports the
trainer only inside a command's function, so `engine --help` and `engine run` never load
TensorFlow.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = ("engine", "stages", "pose", "trainer")
TENSORFLOW = ("tensorflow", "keras", "tf2onnx")

# package -> the packages its modules may import (besides itself). "engine" is the base of the
# engine package: engine/errors.py, engine/paths.py (they import nothing of the project).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "pose": frozenset(),
    "engine": frozenset(),
    "engine.sources": frozenset({"engine", "pose"}),
    "engine.classify": frozenset({"engine", "pose"}),
    "engine.bridge": frozenset({"engine"}),
    "engine.framework": frozenset({"engine", "engine.sources", "engine.classify", "engine.viewer", "engine.bridge", "pose"}),
    "engine.viewer": frozenset({"engine", "engine.framework", "engine.classify", "pose"}),
    "stages": frozenset({"engine", "engine.framework", "engine.classify", "engine.sources", "engine.viewer", "pose"}),
    "trainer": frozenset({"engine", "engine.classify", "engine.sources", "pose"}),
}
# The framework's modules the viewer may use: the message contract and plumbing, not the commands.
VIEWER_MAY_NOT_IMPORT = ("engine.framework.commands", "engine.framework.cli", "engine.framework.supervisor")
ENGINE_SUBPACKAGES = ("framework", "sources", "classify", "viewer", "bridge")


@dataclass(frozen=True)
class Import:
    module: str  # the module that imports
    target: str  # what it imports, absolute
    in_function: bool
    line: int


def package_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "engine" and len(parts) > 1 and parts[1] in ENGINE_SUBPACKAGES:
        return ".".join(parts[:2])
    return parts[0]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def imports_of(path: Path) -> list[Import]:
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, in_function, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against the importing package
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.append(Import(module, base, in_function, child.lineno))
            visit(child, inside)

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


def project_modules() -> list[Path]:
    return sorted(p for top in PROJECT for p in (REPO / top).rglob("*.py") if ".venv" not in p.parts)


ALL_IMPORTS = [imp for path in project_modules() for imp in imports_of(path)]


def test_the_table_covers_every_package() -> None:
    assert {package_of(module_name(p)) for p in project_modules()} <= set(MAY_IMPORT)


def test_nothing_imports_upward() -> None:
    wrong = []
    for imp in ALL_IMPORTS:
        source, target = package_of(imp.module), package_of(imp.target)
        if target.split(".")[0] not in PROJECT or target == source:
            continue
        allowed = MAY_IMPORT[source]
        if source == "engine.framework" and target == "trainer" and imp.in_function and ".commands." in imp.module:
            continue  # a command's function may load the trainer (train, evaluate, prepare, export)
        if target not in allowed:
            wrong.append(f"{imp.module}:{imp.line} imports {imp.target} ({source} may import {sorted(allowed) or 'nothing of the project'})")
    assert wrong == []


def test_the_framework_never_imports_stages() -> None:
    assert [f"{i.module}:{i.line}" for i in ALL_IMPORTS if package_of(i.module) == "engine.framework"
            and package_of(i.target) == "stages"] == []


def test_the_viewer_uses_the_frameworks_contract_not_its_commands() -> None:
    assert [f"{i.module}:{i.line} imports {i.target}" for i in ALL_IMPORTS if package_of(i.module) == "engine.viewer"
            and i.target.startswith(VIEWER_MAY_NOT_IMPORT)] == []


def test_tensorflow_is_imported_only_by_the_trainer() -> None:
    assert [f"{i.module}:{i.line} imports {i.target}" for i in ALL_IMPORTS
            if i.target.split(".")[0] in TENSORFLOW and package_of(i.module) != "trainer"] == []


def loaded_by_engine(argv: list[str], roots: tuple[str, ...]) -> list[str]:
    """Modules under `roots` that `engine ARGV` has imported when it exits (run in a fresh interpreter)."""
    code = (
        "import sys\n"
        "from engine.framework.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {roots!r}), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stderr.strip().splitlines()[-1])


HELP_COMMANDS = [["--help"], ["run", "--help"], ["stage", "--help"]]


@pytest.mark.parametrize("argv", HELP_COMMANDS)
def test_engine_help_does_not_load_tensorflow(argv: list[str]) -> None:
    assert loaded_by_engine(argv, TENSORFLOW) == []


@pytest.mark.parametrize("argv", HELP_COMMANDS)
def test_engine_help_does_not_load_the_trainer(argv: list[str]) -> None:
    assert loaded_by_engine(argv, ("trainer",)) == []
