"""Exercises a learner actually does (helpers.exercises, and the rules every notebook follows).

* the checks: silent on ``None``, ``AssertionError`` when wrong, "correct" when right;
* every notebook's exercises: a learner cell (``answer_N = None``, or a function stub
  ``def answer_N(...)`` that raises ``NotImplementedError``), a check cell that uses
  ``answer_N``, a hidden solution cell tagged ``solution`` that never assigns an ``answer_*``
  name, and no later cell that needs a name only a solution cell defines;
* ``make student`` (``helpers.course.write_student_copies``): copies without a solution cell,
  each of which runs top to bottom in quick mode, its checks saying "not answered yet".
"""

from __future__ import annotations

import ast
import re

import nbformat
import numpy as np
import pytest

from helpers import course
from helpers.course import is_solution
from helpers.exercises import NOT_ANSWERED, check, check_that

NOTEBOOKS = course.course_notebooks()


# --- the checks ----------------------------------------------------------------------------


def test_check_is_polite_on_none_loud_when_wrong_and_brief_when_right(capsys):
    assert check(None, 1.0, label="Ex") is None
    assert NOT_ANSWERED in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Ex: not yet. try harder"):
        check(1.1, 1.0, label="Ex", rtol=0.01, hint="try harder")
    check(1.0 + 1e-9, 1.0, label="Ex")
    assert capsys.readouterr().out.strip() == "Ex: correct."
    check(np.array([1.0, 2.0]), [1.0, 2.0], label="Ex")  # arrays too
    with pytest.raises(AssertionError, match="expected a number"):
        check("0.5", object(), label="Ex")
    with pytest.raises(AssertionError):
        check([1.0, 2.0], [1.0, 2.5], label="Ex")


def test_check_that_judges_by_a_rule_and_treats_a_stub_as_not_answered(capsys):
    check_that(None, lambda a: True, label="Ex")
    assert NOT_ANSWERED in capsys.readouterr().out

    def stub(x):
        raise NotImplementedError

    check_that(stub, lambda f: f(1) == 2, label="Ex")
    assert "not answered yet" in capsys.readouterr().out
    check_that(lambda x: 2 * x, lambda f: f(1) == 2, label="Ex")
    assert capsys.readouterr().out.strip() == "Ex: correct."
    with pytest.raises(AssertionError, match="not yet"):
        check_that(lambda x: x, lambda f: f(1) == 2, label="Ex")
    with pytest.raises(AssertionError, match="raised ZeroDivisionError"):
        check_that(lambda x: 1 / 0, lambda f: f(1) == 2, label="Ex")


# --- the rules every notebook follows ------------------------------------------------------------


def code_cells(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def parse(source: str) -> ast.Module:
    """The cell's Python, IPython magics (``%...``, ``!...``) blanked out."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    return ast.parse("\n".join(lines))


def assigned_names(tree: ast.AST) -> set[str]:
    """Top-level names a cell binds (assignments, loops, with, imports, defs, classes)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return out


def loaded_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def exercises(path):
    nb = nbformat.read(path, as_version=4)
    learner = {}
    for i, c in code_cells(nb):
        if is_solution(c):
            continue
        m = re.fullmatch(r"(answer_\w+)\s*=\s*None\b.*", c.source.strip(), flags=re.S)
        if m:  # answer_N = None
            learner[m.group(1)] = i
        stubs = [n.name for n in parse(c.source).body if isinstance(n, ast.FunctionDef) and n.name.startswith("answer_")]
        if stubs and "raise NotImplementedError" in c.source:  # def answer_N(...): raise NotImplementedError
            learner[stubs[0]] = i
    return nb, learner


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_exercise_has_a_learner_cell_a_check_and_a_hidden_solution(path):
    nb, learner = exercises(path)
    assert len(learner) >= 3, f"{path.name}: expected at least 3 exercises with an `answer_N = None` cell, found {sorted(learner)}"
    cells = dict(code_cells(nb))
    for name, i in learner.items():
        later = [j for j in cells if j > i]
        checks = [j for j in later if not is_solution(cells[j]) and name in loaded_names(parse(cells[j].source))
                  and re.search(r"\bcheck(_that)?\(", cells[j].source)]
        assert checks, f"{path.name}: no check cell uses {name}"
        sol = [j for j in later if is_solution(cells[j])]
        assert sol, f"{path.name}: no solution cell after {name}"
    for i, c in cells.items():
        if is_solution(c):
            assert c.metadata.get("jupyter", {}).get("source_hidden") is True, f"{path.name} cell {i}: a solution cell must be hidden"
            assert re.search(r"\bcheck(_that)?\(", c.source), f"{path.name} cell {i}: a solution must pass its own check"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_solution_assigns_the_learners_variable(path):
    nb = nbformat.read(path, as_version=4)
    for i, c in code_cells(nb):
        if is_solution(c):
            bad = sorted(n for n in assigned_names(parse(c.source)) if n.startswith("answer_"))
            assert bad == [], f"{path.name} cell {i}: a solution cell assigns {bad}; it must leave the learner's answer alone"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_a_student_copy_needs_nothing_a_solution_defines(path):
    """Names bound only by solution cells are never read by a non-solution cell after them."""
    nb = nbformat.read(path, as_version=4)
    defined_by_others: set[str] = set()
    solution_only: dict[str, int] = {}
    for i, c in code_cells(nb):
        tree = parse(c.source)
        if is_solution(c):
            for n in assigned_names(tree) - defined_by_others:
                solution_only.setdefault(n, i)
            continue
        needs = {n: solution_only[n] for n in loaded_names(tree) - assigned_names(tree) if n in solution_only}
        assert needs == {}, f"{path.name} cell {i} reads names only a solution cell defines (name: solution cell): {needs}"
        defined_by_others |= assigned_names(tree)
        for n in assigned_names(tree):
            solution_only.pop(n, None)


# --- student copies (make student) -----------------------------------------------------------


def test_student_copies_have_no_solution_and_no_output(tmp_path, capsys):
    committed = {p: p.read_bytes() for p in NOTEBOOKS}
    assert course.main(["--student", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in NOTEBOOKS]
    assert "wrote" in capsys.readouterr().out
    for path in NOTEBOOKS:
        original = nbformat.read(path, as_version=4)
        copy = nbformat.read(tmp_path / path.name, as_version=4)
        nbformat.validate(copy)
        solutions = [c for c in original.cells if is_solution(c)]
        assert solutions, f"{path.name} has no solution cell to remove"
        assert not any(is_solution(c) for c in copy.cells)
        assert len(copy.cells) == len(original.cells) - len(solutions)
        assert all(c.outputs == [] and c.execution_count is None for c in copy.cells if c.cell_type == "code")
    assert all(p.read_bytes() == b for p, b in committed.items())  # the committed notebooks are untouched


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_a_student_copy_runs_top_to_bottom_with_every_check_unanswered(path, tmp_path):
    copy = course.write_student_copies(tmp_path, [path])[0]
    nb = course.execute_notebook(copy, quick=True)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.text for o in outputs if o.output_type == "stream")
    _, learner = exercises(path)
    assert printed.count("not answered yet") == len(learner), f"{path.name}: every check should wait for its answer"
    assert "correct." not in printed
