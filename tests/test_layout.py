"""helpers/ is a house a learner can open (issue 19): every module opens with a short docstring
saying what it holds and which notebook or command uses it, and none has grown past ~600 lines.
Reads the sources only (no imports): well under a second."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted((ROOT / "helpers").rglob("*.py"))
#: An opening docstring longer than this is a chapter: its details belong in the function that does
#: the work, in the notebook that teaches it, or in TEACHING.md / the README.
MAX_DOCSTRING_LINES = 15
#: "No module in helpers/ over ~600 lines": one concept per module.
MAX_MODULE_LINES = 600


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_modules_are_found():
    names = {rel(p) for p in MODULES}
    assert {"helpers/__init__.py", "helpers/course.py", "helpers/exercises/__init__.py", "helpers/ppo/agent.py"} <= names
    assert len(names) >= 40


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_each_module_opens_with_a_short_docstring(path):
    source = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source, filename=str(path)), clean=False)
    assert doc and doc.strip(), f"{rel(path)}: no opening docstring (say what the module holds and which notebook uses it)"
    lines = len(doc.strip("\n").splitlines())
    assert lines <= MAX_DOCSTRING_LINES, (f"{rel(path)}: its opening docstring has {lines} lines (at most {MAX_DOCSTRING_LINES}): "
                                          "move the details to the functions, the notebook or TEACHING.md")


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_no_module_is_a_grab_bag(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{rel(path)}: {lines} lines (at most ~{MAX_MODULE_LINES}): split it by concern"
