"""No pickle anywhere in the shipped code: a file that loads pickles can run code it was handed.

The source of engine/, stages/, pose/, trainer/ and benchmarks/ is parsed with `ast` and
searched for: imports of pickle and the modules built on it (cloudpickle, dill, shelve,
joblib, multiprocessing, which pickles every argument it sends to a worker, and
concurrent.futures' process pool); `numpy.load` without `allow_pickle=False`; any
`allow_pickle=` other than False; `torch.load`; and pandas' pickle readers. CI runs this
test, so a new occurrence fails the build.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
SCANNED = ("engine", "stages", "pose", "trainer", "benchmarks")
BANNED_MODULES = {
    "pickle": "pickle", "_pickle": "pickle", "cPickle": "pickle", "cloudpickle": "cloudpickle", "dill": "dill",
    "shelve": "shelve pickles its values", "joblib": "joblib pickles its arguments and caches",
    "multiprocessing": "multiprocessing pickles the arguments it sends to workers",
}
BANNED_NAMES = {"ProcessPoolExecutor": "ProcessPoolExecutor pickles the arguments it sends to workers"}
BANNED_CALLS = {("torch", "load"): "torch.load unpickles", ("pd", "read_pickle"): "read_pickle",
                ("pandas", "read_pickle"): "read_pickle"}

@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what} ({self.why})"


def _module_root(name: str | None) -> str:
    return (name or "").split(".")[0]


def scan_source(text: str, path: str = "<string>") -> list[Finding]:
    """Every pickle route in one module's source."""
    tree = ast.parse(text, filename=path)
    numpy_names = {"numpy"}  # names bound to the numpy module, e.g. np
    numpy_load_names: set[str] = set()  # `from numpy import load [as x]`
    findings: list[Finding] = []

    def flag(node: ast.AST, what: str, why: str) -> None:
        findings.append(Finding(path, getattr(node, "lineno", 0), what, why))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = _module_root(alias.name)
                if root in BANNED_MODULES:
                    flag(node, root, BANNED_MODULES[root])
                if alias.name == "numpy":
                    numpy_names.add(alias.asname or "numpy")
        elif isinstance(node, ast.ImportFrom):
            root = _module_root(node.module)
            if root in BANNED_MODULES:
                flag(node, root, BANNED_MODULES[root])
            for alias in node.names:
                if alias.name in BANNED_NAMES:
                    flag(node, alias.name, BANNED_NAMES[alias.name])
                if node.module == "numpy" and alias.name == "load":
                    numpy_load_names.add(alias.asname or "load")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in BANNED_NAMES:
            flag(node, node.attr, BANNED_NAMES[node.attr])
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if (owner, name) in BANNED_CALLS:
            flag(node, f"{owner}.{name}", BANNED_CALLS[(owner, name)])
        if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            root = _module_root(str(node.args[0].value))
            if root in BANNED_MODULES:
                flag(node, f"{name}({node.args[0].value!r})", BANNED_MODULES[root])
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        allow = keywords.get("allow_pickle")
        if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
            flag(node, "allow_pickle=" + ast.unparse(allow), "only allow_pickle=False is safe")
        is_numpy_load = (name == "load" and owner in numpy_names) or (isinstance(func, ast.Name) and func.id in numpy_load_names)
        if is_numpy_load and allow is None:
            flag(node, "numpy.load without allow_pickle=False", "say allow_pickle=False so a hostile file is refused")
    return findings


def scan_tree() -> list[Finding]:
    findings = []
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            findings += scan_source(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    return findings


def test_no_pickle_in_shipped_code() -> None:
    findings = scan_tree()
    assert not findings, "pickle routes found:\n" + "\n".join(map(str, findings))


def test_scanner_sees_every_banned_form() -> None:
    """The check itself: each form the rule bans is found, and the allowed forms are not."""
    banned = {
        "import pickle": "pickle",
        "import pickle as p": "pickle",
        "from pickle import loads": "pickle",
        "import cloudpickle": "cloudpickle",
        "import multiprocessing": "multiprocessing",
        "from multiprocessing import Pool": "multiprocessing",
        "import multiprocessing.pool": "multiprocessing",
        "from concurrent.futures import ProcessPoolExecutor": "ProcessPoolExecutor",
        "import concurrent.futures\nconcurrent.futures.ProcessPoolExecutor()": "ProcessPoolExecutor",
        "import numpy as np\nnp.load('x.npz')": "numpy.load without allow_pickle=False",
        "import numpy\nnumpy.load('x.npz')": "numpy.load without allow_pickle=False",
        "from numpy import load\nload('x.npz')": "numpy.load without allow_pickle=False",
        "import numpy as np\nnp.load('x.npy', allow_pickle=True)": "allow_pickle=True",
        "import numpy as np\nflag = True\nnp.load('x.npy', allow_pickle=flag)": "allow_pickle=flag",
        "import torch\ntorch.load('w.pt')": "torch.load",
        "import importlib\nimportlib.import_module('pickle')": "import_module('pickle')",
    }
    for source, what in banned.items():
        assert what in [f.what for f in scan_source(source)], source
    allowed = [
        "import numpy as np\nnp.load('x.npz', allow_pickle=False)",
        "import json\njson.load(open('x'))",
        "import onnx\nonnx.load('m.onnx')",
        "# pickle is not used here\nx = 'no pickle'",
        "from concurrent.futures import ThreadPoolExecutor",
    ]
    for source in allowed:
        assert scan_source(source) == [], source
