"""The suite's layout: tests import helpers from tests.support only (never a conftest or another
test module), tests never import bench, and bench imports nothing from tests but tests.support."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.env import ROOT

SUPPORT = "tests.support"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the file, relative ones resolved, and every module a
    `pytest_plugins` list names."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if (root / module.replace(".", "/")).is_dir():
                # From a package, the names may be modules: `from tests import conftest`.
                for alias in node.names:
                    yield node.lineno, f"{module}.{alias.name}"
            else:
                yield node.lineno, module
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            for element in ast.walk(node.value):
                if isinstance(element, ast.Constant) and isinstance(element.value, str):
                    yield node.lineno, element.value


def is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(root: Path) -> list[str]:
    """Every import that breaks the layout, as `path:line: what`."""
    found = []
    for tree in ("tests", "bench"):
        for path in sorted((root / tree).rglob("*.py")):
            where = path.relative_to(root)
            for line, module in imported(path, root):
                if tree == "tests" and is_under(module, "bench"):
                    found.append(f"{where}:{line}: tests import bench ({module})")
                elif (
                    is_under(module, "tests")
                    and module != "tests"
                    and not is_under(module, SUPPORT)
                ):
                    found.append(f"{where}:{line}: imports {module}; import from {SUPPORT}")
    return found


def test_tests_and_bench_import_nothing_from_tests_but_tests_support_and_tests_no_bench():
    assert violations(ROOT) == []


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


SUPPORT_TREE = {
    "tests/__init__.py": "",
    "tests/support/__init__.py": "",
    "tests/support/waiting.py": "",
    "tests/unit/__init__.py": "",
    "bench/__init__.py": "",
}


@pytest.mark.parametrize(
    ("path", "text", "message"),
    [
        (
            "tests/e2e/test_a.py",
            "from tests.e2e.conftest import Anvil\n",
            "tests/e2e/test_a.py:1: imports tests.e2e.conftest",
        ),
        (
            "tests/api/test_a.py",
            "x = 1\nfrom tests.api.test_resources import assert_problem\n",
            "tests/api/test_a.py:2: imports tests.api.test_resources",
        ),
        (
            "tests/e2e/test_a.py",
            "from . import test_up\n",
            "tests/e2e/test_a.py:1: imports tests.e2e.test_up",
        ),
        (
            "tests/e2e/test_a.py",
            "from .conftest import Anvil\n",
            "tests/e2e/test_a.py:1: imports tests.e2e.conftest",
        ),
        ("tests/e2e/test_a.py", "from tests import conftest\n", "imports tests.conftest"),
        ("tests/unit/test_a.py", "import tests.conftest as tc\n", "imports tests.conftest"),
        ("tests/integration/test_a.py", "def f():\n    import tests.receiver\n", ":2: imports"),
        ("tests/faults/test_a.py", "from bench.soak import soak\n", "tests import bench"),
        ("tests/support/soak.py", "from bench.meters import CpuMeter\n", "tests import bench"),
        ("tests/conftest.py", 'pytest_plugins = ["tests.e2e.conftest"]\n', "tests.e2e.conftest"),
        ("bench/common.py", "import tests.conftest as tc\n", "bench/common.py:1: imports"),
        ("bench/x.py", "from tests.integration.helpers import add_endpoint\n", "imports"),
    ],
    ids=[
        "a-conftest",
        "another-test-module",
        "a-test-module-relatively",
        "a-conftest-relatively",
        "the-root-conftest-from-tests",
        "the-root-conftest-as-a-module",
        "in-a-function",
        "a-test-imports-bench",
        "support-imports-bench",
        "a-plugin-named-in-pytest-plugins",
        "bench-imports-a-conftest",
        "bench-imports-a-tier-helper",
    ],
)
def test_each_kind_of_forbidden_import_is_found(tmp_path: Path, path: str, text: str, message):
    write(tmp_path, {**SUPPORT_TREE, path: text})
    (found,) = violations(tmp_path)
    assert found.startswith(path) and message in found


def test_imports_from_tests_support_are_allowed_everywhere(tmp_path: Path):
    write(
        tmp_path,
        {
            **SUPPORT_TREE,
            "tests/conftest.py": 'pytest_plugins = ["tests.support.waiting"]\n',
            "tests/unit/test_a.py": "from tests.support.waiting import x\nimport tests.support\n",
            "tests/support/chain.py": "from tests.support import waiting\nfrom . import waiting\n",
            "bench/common.py": "import tests.support.waiting as w\nfrom bench import machine\n",
        },
    )
    assert violations(tmp_path) == []
