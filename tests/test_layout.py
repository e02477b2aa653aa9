"""The suite's layout (tests/README.md): tests mirror the packages, shared code lives in tests/helpers/,
and no test module imports another test module or a conftest (a fixture moved or renamed there would
break an unrelated suite, and pytest would import that module twice under two names)."""
from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SUITES = {"unit", "core", "web", "workers", "sandbox", "integration", "faults", "browser", "security", "bench"}


def python_files():
    return sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            # `from tests.web import test_api` names the test module in the alias, not the module
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def names_of_test_modules(tests_root: Path = TESTS) -> set[str]:
    return {p.stem for p in tests_root.rglob("*.py") if p.stem.startswith("test_") or p.stem == "conftest"}


def imports_of_test_modules(path: Path, local_modules: set[str]) -> list[str]:
    found = []
    for name in imported_modules(path):
        parts = name.split(".")
        if parts[0] == "tests" and any(part.startswith("test_") or part == "conftest" for part in parts[1:]):
            found.append(name)
        elif parts[0] in local_modules:  # a bare `import test_x` through pytest's sys.path insertion
            found.append(name)
    return found


def test_no_module_of_the_suite_imports_a_test_module_or_a_conftest():
    local = names_of_test_modules()
    offenders = {str(p.relative_to(TESTS)): bad for p in python_files() if (bad := imports_of_test_modules(p, local))}
    assert offenders == {}, "move what they share into tests/helpers/"


def test_the_check_sees_each_form_of_such_an_import(tmp_path):
    sample = tmp_path / "test_sample.py"
    for line in ("from tests.conftest import drain", "from tests.web.test_api import x", "import tests.unit.test_launch",
                 "from tests.web import test_api", "from test_launch import plan", "import conftest"):
        sample.write_text(line + "\n")
        assert imports_of_test_modules(sample, {"test_launch", "conftest"}), line
    sample.write_text("from tests.helpers.apps import drain\nfrom core.tracking import collect\n")
    assert imports_of_test_modules(sample, {"test_launch", "conftest"}) == []


def test_test_modules_live_in_a_suite_and_helpers_hold_no_tests():
    misplaced = [str(p.relative_to(TESTS)) for p in python_files() if p.stem.startswith("test_")
                 and p.parent != TESTS and p.relative_to(TESTS).parts[0] not in SUITES]
    assert misplaced == []
    helpers_with_tests = [p.name for p in (TESTS / "helpers").glob("*.py")
                          if any(isinstance(n, ast.FunctionDef) and n.name.startswith("test")
                                 for n in ast.parse(p.read_text(encoding="utf-8")).body)]
    assert helpers_with_tests == []


def test_test_module_names_are_unique():
    """No `__init__.py` in tests/ (one in tests/sandbox would shadow the real `sandbox` package), so
    pytest imports test modules by their bare name: two of one name cannot both be collected."""
    seen: dict[str, list[str]] = {}
    for p in python_files():
        if p.stem.startswith("test_"):
            seen.setdefault(p.stem, []).append(str(p.relative_to(TESTS)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
