"""The exercises' checks: one ``check(id, answer, **context)`` per exercise, the answers kept here.

An exercise is an answer cell and a check cell; its grader lives in ``nbXX.py`` (XX: the notebook
that teaches it), registered with :func:`grader`. ``make student`` puts ``# YOUR CODE HERE`` in
place of each solution and drops the hidden tests::

    answer_1 = None                          # or a function whose body is the solution
    ### BEGIN SOLUTION
    answer_1 = ...
    ### END SOLUTION

    check("01.cpc_2024", answer_1)           # prints the verdict, a hint when wrong (:func:`check`)
    ### BEGIN HIDDEN TESTS
    assert_correct("01.cpc_2024", answer_1)  # nbgrader's autograde
    ### END HIDDEN TESTS
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

NOT_ANSWERED = "not answered yet: replace None by your answer, then rerun this cell"
NOT_WRITTEN = ("not answered yet: write the function's body (it is still the stub: it returns None or raises "
               "NotImplementedError), then rerun this cell")
#: ``COURSE_STRICT`` set to one of these turns a wrong answer into an ``AssertionError``.
STRICT_VALUES = ("1", "true", "yes")
_ID = re.compile(r"(\d\d)\.[A-Za-z0-9_]+")


@dataclass(frozen=True)
class Grader:
    """A registered grader: ``func(answer, **context)`` is ``None`` when right, else what is wrong."""

    id: str
    func: Callable[..., str | None]
    hints: tuple[str, ...]


#: Every grader registered so far, by id (a notebook's module registers its own on import).
GRADERS: dict[str, Grader] = {}
#: Wrong tries per id in this kernel (what decides which hint :func:`check` shows).
TRIES: Counter = Counter()


def grader(exercise_id: str, hints: tuple[str, ...] | list[str]) -> Callable:
    """Register the decorated function as the grader of ``exercise_id`` ("NN.name", NN the notebook).

    A grader computes what is right from the course's data and helpers (a learner's function is
    called through :func:`call`) and says in words what is wrong, never the expected value:
    nothing in a notebook holds or prints it, so assigning an earlier cell's variable cannot pass
    a check. ``hints``: one or more, from gentle to strong; none may give the answer away.
    """
    if not _ID.fullmatch(exercise_id):
        raise ValueError(f"grader: exercise id {exercise_id!r} is not 'NN.name' (NN: the notebook's number)")
    hints = tuple(hints)
    if not hints or not all(isinstance(h, str) and h.strip() for h in hints):
        raise ValueError(f"grader {exercise_id!r}: give at least one hint, each a non-empty string")

    def register(func: Callable[..., str | None]) -> Callable[..., str | None]:
        if exercise_id in GRADERS and GRADERS[exercise_id].func.__qualname__ != func.__qualname__:
            raise ValueError(f"grader {exercise_id!r} is registered twice ({GRADERS[exercise_id].func.__qualname__}, {func.__qualname__})")
        GRADERS[exercise_id] = Grader(exercise_id, func, hints)
        return func

    return register


def strict() -> bool:
    """``COURSE_STRICT=1`` in the environment: wrong answers raise instead of printing (the course
    runner sets it for every notebook it runs: tests, CI, ``make course``)."""
    return os.environ.get("COURSE_STRICT", "").strip().lower() in STRICT_VALUES


def get_grader(exercise_id: str) -> Grader:
    """The grader of ``exercise_id``, importing ``helpers.exercises.nbNN`` on first use."""
    if exercise_id not in GRADERS:
        m = _ID.fullmatch(exercise_id)
        if m is None:
            raise KeyError(f"check: {exercise_id!r} is not an exercise id ('NN.name')")
        try:
            importlib.import_module(f"{__name__}.nb{m.group(1)}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.nb{m.group(1)}":
                raise
        if exercise_id not in GRADERS:
            known = sorted(k for k in GRADERS if k.startswith(m.group(1) + "."))
            raise KeyError(f"check: no exercise {exercise_id!r}; notebook {m.group(1)} has {known}")
    return GRADERS[exercise_id]


@dataclass(frozen=True)
class Verdict:
    """What a grader made of an answer: ``status`` is "unanswered", "correct" or "wrong"."""

    status: str
    message: str = ""  # for "wrong": what is wrong (never the expected value)


#: The last verdict of :func:`check` per id, with the very objects it judged: the hidden test right
#: after the check (nbgrader's autograde, the instructor's notebook) reuses it instead of grading
#: twice (a grader may fit or train).
_LAST: dict[str, tuple[Any, dict, "Verdict"]] = {}


def grade(exercise_id: str, answer: Any, **context) -> Verdict:
    """Run the grader of ``exercise_id`` on ``answer``; prints nothing, raises only for an unknown id.

    ``None`` and a function stub (it returns None or raises ``NotImplementedError``) are
    unanswered; an answer whose use raises anything else is wrong, the exception named.
    """
    g = get_grader(exercise_id)
    if answer is None:
        return Verdict("unanswered", NOT_ANSWERED)
    try:
        with _quiet():
            problem = g.func(answer, **context)
    except NotImplementedError:
        return Verdict("unanswered", NOT_WRITTEN)
    except Exception as e:  # a learner's function that crashes, an answer of the wrong kind
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return Verdict("wrong", f"using your answer raised {type(e).__name__}" + (f": {text}" if text else ""))
    if problem is None:
        return Verdict("correct")
    if not isinstance(problem, str) or not problem.strip():
        raise TypeError(f"grader {exercise_id!r} returned {problem!r}: it must return None or a message")
    return Verdict("wrong", problem.strip())


@contextlib.contextmanager
def _quiet():
    """No log records up to INFO and no warnings while a grader runs (e.g. PyMC's "Sampling: ..."):
    they go to stderr, and nbgrader gives no points to a graded cell that wrote to stderr."""
    logging.disable(logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def feedback(exercise_id: str, verdict: Verdict, tries: int) -> str:
    """The text :func:`check` shows: for a wrong answer, what is wrong and the hints earned so far."""
    if verdict.status == "unanswered":
        return f"{exercise_id}: {verdict.message}."
    if verdict.status == "correct":
        return f"{exercise_id}: correct."
    hints = get_grader(exercise_id).hints
    shown = hints[: min(max(tries, 1), len(hints))]
    lines = [f"{exercise_id}: not yet: {verdict.message}"]
    lines += [f"  hint{' ' + str(k) if len(hints) > 1 else ''}: {h}" for k, h in enumerate(shown, 1)]
    if len(shown) < len(hints):
        lines.append("  (another hint after the next wrong try)")
    return "\n".join(lines)


def check(exercise_id: Any, answer: Any = None, /, **context) -> None:
    """Check the learner's ``answer`` to ``exercise_id``: prints "not answered yet", "correct" or
    "not yet: ..." with a hint; with ``COURSE_STRICT=1`` a wrong answer raises ``AssertionError``.

    A second, stronger hint comes from the second wrong try on (tries counted per id in this
    kernel). Without ``COURSE_STRICT`` it returns whatever the verdict, so Run All goes on in a
    learner's copy.

    ``context``: the learner's own objects the grader needs (e.g. ``df=df``), never an expected value.
    """
    verdict = grade(exercise_id, answer, **context)
    _LAST[exercise_id] = (answer, dict(context), verdict)
    if verdict.status == "wrong":
        TRIES[exercise_id] += 1
    text = feedback(exercise_id, verdict, TRIES[exercise_id])
    if verdict.status == "wrong" and strict():
        raise AssertionError(text)
    print(text)


def assert_correct(exercise_id: str, answer: Any, **context) -> None:
    """For nbgrader's hidden tests (the check cell is a graded cell): ``AssertionError`` unless
    ``answer`` is right (unanswered fails too); silent when right (the check above said "correct")."""
    last = _LAST.pop(exercise_id, None)
    if last is not None and last[0] is answer and last[1].keys() == context.keys() \
            and all(last[1][k] is v for k, v in context.items()):
        verdict = last[2]  # the check just above judged these very objects
    else:
        verdict = grade(exercise_id, answer, **context)
    if verdict.status != "correct":
        raise AssertionError(feedback(exercise_id, verdict, tries=1))



def call(function: Any, *args, **kwargs) -> Any:
    """Call the learner's ``function``; a stub (it returns None, or raises NotImplementedError)
    raises ``NotImplementedError``, which :func:`check` reads as "not answered yet".

    Graders call a learner's function through this: a student copy's stub is the function's
    docstring and ``# YOUR CODE HERE``, so it returns None.
    """
    if not callable(function):
        raise TypeError(f"your answer is a {type(function).__name__}, not a function")
    result = function(*args, **kwargs)
    if result is None:
        raise NotImplementedError
    return result


def reset_tries() -> None:
    """Forget the wrong tries counted so far, and the last verdicts (tests)."""
    TRIES.clear()
    _LAST.clear()


def as_number(answer: Any, what: str = "your answer") -> float:
    """``answer`` as one finite float, or ``ValueError`` saying what it is instead."""
    if isinstance(answer, (bool, np.bool_)) or isinstance(answer, str):
        raise ValueError(f"{what} is a {type(answer).__name__}, not a number")
    arr = np.asarray(answer, dtype=float)
    if arr.size != 1:
        raise ValueError(f"{what} holds {arr.size} numbers, not one")
    x = float(arr.reshape(()))
    if not np.isfinite(x):
        raise ValueError(f"{what} is {x}, not a finite number")
    return x


def off_by(answer: float, expected: float) -> str:
    """Which way ``answer`` misses ``expected``, in coarse words (too high / too low, close or far),
    never the expected value nor a ratio that would give it away."""
    if expected == 0:
        return "it should be zero"
    ratio = answer / expected
    if ratio <= 0:
        return "its sign is wrong" if ratio < 0 else "it should not be zero"
    way = "too high" if ratio > 1 else "too low"
    if abs(ratio - 1) <= 0.05:
        return f"close, but {way} (within 5%)"
    if 0.5 <= ratio <= 2:
        return way
    return f"far {way} (off by more than a factor of two)"
