"""Shared by the exercise tests: a learner's kernel, and "a wrong answer fails with a hint and
never shows the expected value"."""

from __future__ import annotations

import pytest

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
