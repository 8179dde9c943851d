"""Checks for the notebooks' exercises: silent on ``None``, loud when wrong, brief when right.

Every exercise in the course has three cells::

    answer_1 = None            # the learner's cell: replace None by your answer
    check(answer_1, ...)       # the check: "not answered yet" on None, AssertionError when wrong
    # solution (tagged "solution", hidden)
    solution_1 = ...           # never assigns answer_1
    check(solution_1, ...)     # proves, on every CI run, that the solution passes the check

``make student`` removes the solution cells (``helpers.course.write_student_copies``); a student
copy still runs top to bottom, each check printing "not answered yet".
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

NOT_ANSWERED = "not answered yet: replace None by your answer, then rerun this cell"


def check(answer: Any, expected: Any, *, label: str, rtol: float = 1e-6, atol: float = 0.0, hint: str = "") -> None:
    """Compare a numeric (or array) ``answer`` with ``expected``.

    Says "not answered yet" when ``answer is None``, "correct" when
    ``np.allclose(answer, expected, rtol, atol)``, and otherwise raises ``AssertionError`` with
    ``hint``. ``expected`` is computed by the check cell from the notebook's own state, never
    typed in.
    """
    if answer is None:
        print(f"{label}: {NOT_ANSWERED}.")
        return
    try:
        ok = bool(np.allclose(np.asarray(answer, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol))
    except (TypeError, ValueError) as e:
        raise AssertionError(f"{label}: expected a number (or array) like {expected!r}, got {answer!r} ({e})") from None
    if not ok:
        raise AssertionError(f"{label}: not yet. {hint}".rstrip())
    print(f"{label}: correct.")


def check_that(answer: Any, predicate: Callable[[Any], bool], *, label: str, hint: str = "") -> None:
    """Like :func:`check`, for answers judged by a rule (a choice, a function, a range).

    A function stub that still raises ``NotImplementedError`` counts as not answered.
    """
    if answer is None:
        print(f"{label}: {NOT_ANSWERED}.")
        return
    try:
        ok = bool(predicate(answer))
    except NotImplementedError:  # a function stub the learner has not filled in yet
        print(f"{label}: not answered yet: fill in the function (it still raises NotImplementedError), then rerun this cell.")
        return
    except Exception as e:  # a learner's function that crashes is a wrong answer, said plainly
        raise AssertionError(f"{label}: your answer raised {type(e).__name__}: {e}. {hint}".rstrip()) from None
    if not ok:
        raise AssertionError(f"{label}: not yet. {hint}".rstrip())
    print(f"{label}: correct.")
