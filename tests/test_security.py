"""No code execution from user input (issue 7): the package, the app and the pages never call
eval/exec/compile, never unpickle (pickle, marshal, shelve, dill, joblib, torch.load, np.load with
allow_pickle, pandas.read_pickle, yaml.load), never start a shell. Checked on the syntax tree, so a
comment or a docstring mentioning these names does not count, and an alias does not hide a call.
The scanner is tested on snippets that contain each pattern, so this test can fail."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BANNED_CALLS = {"eval", "exec", "compile", "__import__", "execfile", "input"}
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
BANNED_ATTRS = {
    ("torch", "load"), ("os", "system"), ("os", "popen"), ("os", "execv"), ("os", "execvp"), ("pd", "read_pickle"),
    ("pandas", "read_pickle"), ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"),
    ("numpy", "load"), ("np", "load"), ("importlib", "import_module"), ("runpy", "run_path"),
    ("runpy", "run_module"), ("code", "interact"),
}


def shipped_files() -> list[Path]:
    files = sorted((ROOT / "divlab").rglob("*.py")) + sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
    return [f for f in files if f.exists()]


def _dotted(node) -> tuple[str, ...]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return tuple(reversed(parts))
    return ()


def findings(source: str, name: str = "<snippet>") -> list[str]:
    """Every banned construct in ``source`` as ``name:line: what``."""
    tree = ast.parse(source, filename=name)
    aliases: dict[str, tuple[str, ...]] = {}  # local name -> the dotted origin it refers to
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in BANNED_MODULES:
                    out.append(f"{name}:{node.lineno}: import {a.name}")
                aliases[a.asname or a.name.split(".")[0]] = tuple((a.name if a.asname else a.name.split(".")[0]).split("."))
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            for a in node.names:
                if root in BANNED_MODULES:
                    out.append(f"{name}:{node.lineno}: from {node.module} import {a.name}")
                aliases[a.asname or a.name] = tuple(node.module.split(".")) + (a.name,)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        dotted = _dotted(node.func)
        if not dotted:
            continue
        full = aliases.get(dotted[0], (dotted[0],)) + dotted[1:]
        if len(full) == 1 and full[0] in BANNED_CALLS:
            out.append(f"{name}:{node.lineno}: {full[0]}()")
        if full[-1] in BANNED_CALLS and full[0] == "builtins":
            out.append(f"{name}:{node.lineno}: {'.'.join(full)}()")
        if len(full) >= 2 and (full[0], full[-1]) in BANNED_ATTRS:
            allow_pickle_off = (full[-1] == "load" and full[0] in ("np", "numpy")
                                and any(k.arg == "allow_pickle" and isinstance(k.value, ast.Constant)
                                        and k.value.value is False for k in node.keywords))
            if not allow_pickle_off:
                out.append(f"{name}:{node.lineno}: {'.'.join(full)}()")
        if full[0] == "subprocess" and any(k.arg == "shell" for k in node.keywords):
            out.append(f"{name}:{node.lineno}: subprocess with shell=")
    return out


@pytest.mark.parametrize("snippet, what", [
    pytest.param("eval(text)", "eval()", id="eval"),
    pytest.param("exec(code)", "exec()", id="exec"),
    pytest.param("import builtins\nbuiltins.eval('1')", "builtins.eval()", id="builtins-eval"),
    pytest.param("compile(src, 'f', 'exec')", "compile()", id="compile"),
    pytest.param("import pickle\npickle.loads(b)", "import pickle", id="pickle"),
    pytest.param("from pickle import loads as l\nl(b)", "from pickle import loads", id="pickle-alias"),
    pytest.param("import torch\ntorch.load(f)", "torch.load()", id="torch-load"),
    pytest.param("import torch as T\nT.load(f)", "torch.load()", id="torch-alias"),
    pytest.param("from torch import load\nload(f)", "torch.load()", id="torch-from"),
    pytest.param("import numpy as np\nnp.load(f, allow_pickle=True)", "numpy.load()", id="np-load-pickle"),
    pytest.param("import pandas as pd\npd.read_pickle(f)", "pandas.read_pickle()", id="read-pickle"),
    pytest.param("import yaml\nyaml.load(s)", "yaml.load()", id="yaml"),
    pytest.param("import os\nos.system(cmd)", "os.system()", id="os-system"),
    pytest.param("import subprocess\nsubprocess.run(c, shell=True)", "shell=", id="shell"),
    pytest.param("import marshal", "import marshal", id="marshal"),
    pytest.param("import importlib\nimportlib.import_module(name)", "importlib.import_module()", id="import-module"),
])
def test_scanner_flags_each_pattern(snippet, what):
    found = findings(snippet)
    assert any(what in f for f in found), found


@pytest.mark.parametrize("snippet", [
    pytest.param("# eval(x) in a comment\n'''exec(y) in a docstring'''", id="comment"),
    pytest.param("model.eval()", id="torch-module-eval"),
    pytest.param("import numpy as np\nnp.load(f, allow_pickle=False)", id="np-load-safe"),
    pytest.param("import json\njson.loads(s)", id="json"),
    pytest.param("re.compile(r'x')", id="re-compile"),
])
def test_scanner_allows_safe_lookalikes(snippet):
    assert findings(snippet) == []


def test_package_app_and_pages_never_execute_or_unpickle_user_data():
    files = shipped_files()
    assert len(files) >= 20 and (ROOT / "divlab" / "scenario.py") in files  # the scan sees the package
    problems = [f for path in files for f in findings(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert problems == []


class _Payload:
    """Unpickling this object would create ``marker`` (a stand-in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_payload_given_as_a_scenario_file_is_refused_and_never_run(tmp_path):
    import pickle as stdlib_pickle  # the test builds the attack; divlab itself never imports pickle

    from divlab.cli import main
    from divlab.scenario import Scenario

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.json"
    evil.write_bytes(stdlib_pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match="not UTF-8|malformed JSON"):
        Scenario.from_file(evil)
    assert main(["compare", str(evil), str(evil)]) == 2
    assert main(["fit", "--scenario", str(evil)]) == 2
    assert not marker.exists()


def test_scenario_files_are_read_bounded(tmp_path):
    """An oversized file is refused after reading at most MAX_BYTES + 1 bytes."""
    from divlab.scenario import MAX_BYTES, Scenario

    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_BYTES + 10))
    with pytest.raises(ValueError, match=f"too large \\(more than {MAX_BYTES} bytes\\)"):
        Scenario.from_file(big)
