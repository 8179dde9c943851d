"""Shared by the exercise tests: a learner's kernel, "a wrong answer fails with a hint and never
shows the expected value", and "the student copy holds no solution"."""

from __future__ import annotations

import pytest

from helpers import course
from helpers import exercises as ex
from helpers.exercises import check


@pytest.fixture(autouse=True)
def learner_kernel(monkeypatch):
    """A learner's kernel: wrong answers print (no COURSE_STRICT), tries counted from zero."""
    monkeypatch.delenv("COURSE_STRICT", raising=False)
    ex.reset_tries()
    yield
    ex.reset_tries()


def shown(value) -> list[str]:
    """How an expected number could appear in a text."""
    v = float(value)
    if v == 0:
        return []
    return [f"{v:.2f}", f"{v:.3f}"] + ([repr(round(v, 6)), f"{v:.4g}"] if not v.is_integer() else [])


def assert_fails_with_hint(capsys, exercise_id, answer, *, expected=(), says="", **context):
    """``answer`` is wrong: the check prints "not yet", the first hint, no expected value (a number,
    in any of the ways :func:`shown` writes it, or a string); returns the text."""
    check(exercise_id, answer, **context)
    text = capsys.readouterr().out
    assert text.startswith(f"{exercise_id}: not yet: "), text
    assert ex.get_grader(exercise_id).hints[0] in text, text
    assert says in text, text
    for value in expected:
        for s in ([value] if isinstance(value, str) else shown(value)):
            assert s not in text, f"{exercise_id}: the expected value {s} is printed: {text}"
    return text


def solution_lines(nb) -> list[str]:
    """The code lines inside the solution regions of ``nb`` (comments and blank lines left out)."""
    lines = []
    for cell in nb.cells:
        inside = False
        for line in cell.source.split("\n"):
            text = line.strip()
            if text == course.BEGIN_SOLUTION:
                inside = True
            elif text == course.END_SOLUTION:
                inside = False
            elif inside and text and not text.startswith("#") and len(text) > 12:
                lines.append(text)
    return lines


def assert_student_copy_holds_no_solution(nb, *, at_least: int, name: str = "") -> str:
    """The student copy of ``nb`` holds none of the lines only a solution region holds (at least
    ``at_least`` such lines exist) and no hidden test; returns the copy's source."""
    source = "\n".join(c.source for c in course.student_copy(nb).cells)
    solutions = solution_lines(nb)
    assert len(solutions) >= at_least, f"{name}: the notebook's exercises hold their solutions in nbgrader regions"
    outside = "\n".join(course.clear_regions(c.source) for c in nb.cells if c.cell_type == "code")
    outside += "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    distinctive = [line for line in solutions if line not in outside]  # lines a solution alone holds
    assert len(distinctive) >= at_least
    leaked = [line for line in distinctive if line in source]
    assert leaked == [], f"{name}: solution lines left in the student copy: {leaked}"
    assert "BEGIN HIDDEN TESTS" not in source and "assert_correct(" not in source
    return source
