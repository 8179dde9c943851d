"""Exercises a learner actually does (helpers.exercises, and the rules every notebook follows).

* the checks (``check("NN.name", answer, ...)``): "not answered yet" on ``None`` or a stub,
  "correct" when right, "not yet: ..." and a hint (a stronger one on later tries) when wrong,
  ``AssertionError`` only under ``COURSE_STRICT=1``; never the expected value;
* every notebook's exercises in nbgrader's form: a solution region in the learner's cell, a check
  cell, hidden tests, and no later cell that needs a name only a solution defines;
* ``make student`` (``helpers.course.write_student_copies``): the regions replaced by stubs, the
  hidden tests removed (tests/test_nbgrader.py runs the copies);
* notebooks 01-03's graders: the right answer passes, two plausible wrong ones fail with a hint.
"""

from __future__ import annotations

import ast

import nbformat
import numpy as np
import pytest

from helpers import course
from helpers.course import is_solution
from helpers import exercises as ex
from helpers.exercises import check

NOTEBOOKS = course.course_notebooks()


# --- the checks (helpers.exercises) ---------------------------------------------------------

@pytest.fixture
def toy(monkeypatch):
    """A grader "99.toy" registered for the test (right answer: the sum of ``xs``), tries reset."""
    monkeypatch.delenv("COURSE_STRICT", raising=False)
    monkeypatch.setattr(ex, "GRADERS", dict(ex.GRADERS))
    monkeypatch.setattr(ex, "TRIES", ex.TRIES.__class__())

    @ex.grader("99.toy", hints=("add them all up", "use sum(xs)"))
    def _toy(answer, xs):
        if callable(answer):
            answer = answer(xs)
        x = ex.as_number(answer)
        return None if np.isclose(x, sum(xs)) else f"the total is {ex.off_by(x, sum(xs))}"

    return "99.toy"


def test_check_is_polite_on_none_and_on_a_stub(toy, capsys):
    def stub(xs):
        raise NotImplementedError

    check(toy, None, xs=[1, 2])
    check(toy, stub, xs=[1, 2])
    out = capsys.readouterr().out
    assert out.count("not answered yet") == 2 and "write the function's body" in out
    assert ex.TRIES[toy] == 0


def test_check_says_correct_when_right(toy, capsys):
    check(toy, 3.0, xs=[1, 2])
    check(toy, lambda xs: sum(xs), xs=[1, 2])
    assert capsys.readouterr().out.splitlines() == ["99.toy: correct."] * 2


def test_a_wrong_answer_prints_what_is_wrong_and_a_stronger_hint_on_the_second_try(toy, capsys):
    check(toy, 2.0, xs=[1, 2])  # returns: Run All goes on in a learner's copy
    first = capsys.readouterr().out
    assert first.startswith("99.toy: not yet: the total is too low") and "add them all up" in first
    assert "use sum(xs)" not in first and "another hint" in first
    check(toy, 7.0, xs=[1, 2])
    second = capsys.readouterr().out
    assert "far too high" in second and "add them all up" in second and "use sum(xs)" in second
    assert ex.TRIES[toy] == 2
    check(toy, 3.0, xs=[1, 2])
    assert capsys.readouterr().out.strip() == "99.toy: correct."
    for text in (first, second):
        assert "3" not in text  # the expected value is never shown


def test_a_crashing_answer_is_wrong_and_says_what_it_raised(toy, capsys):
    check(toy, lambda xs: 1 / 0, xs=[1, 2])
    check(toy, "three", xs=[1, 2])
    out = capsys.readouterr().out
    assert "not yet: using your answer raised ZeroDivisionError" in out
    assert "not yet: using your answer raised ValueError: your answer is a str, not a number" in out


def test_strict_mode_raises_on_a_wrong_answer_only(toy, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_STRICT", "1")
    assert ex.strict()
    with pytest.raises(AssertionError, match=r"99.toy: not yet: the total is too low(.|\n)*hint"):
        check(toy, 2.0, xs=[1, 2])
    check(toy, None, xs=[1, 2])  # a student copy still runs top to bottom in tests and CI
    check(toy, 3.0, xs=[1, 2])
    assert capsys.readouterr().out.splitlines()[-2:] == [f"99.toy: {ex.NOT_ANSWERED}.", "99.toy: correct."]
    monkeypatch.setenv("COURSE_STRICT", "0")
    assert not ex.strict()


def test_assert_correct_fails_an_unanswered_exercise_too(toy, capsys):
    for unanswered in (None, lambda xs: (_ for _ in ()).throw(NotImplementedError)):
        with pytest.raises(AssertionError, match="not answered yet"):
            ex.assert_correct(toy, unanswered, xs=[1, 2])
    with pytest.raises(AssertionError, match="not yet"):
        ex.assert_correct(toy, 4, xs=[1, 2])
    ex.assert_correct(toy, 3, xs=[1, 2])
    assert capsys.readouterr().out == ""  # silent when right: the check above it said "correct"


def test_the_hidden_test_after_a_check_reuses_its_verdict_and_grades_anything_else(toy):
    calls = []

    def counted(xs):
        calls.append(1)
        return sum(xs)

    xs = [1, 2]
    check(toy, counted, xs=xs)
    ex.assert_correct(toy, counted, xs=xs)  # the same objects: no second grading
    assert len(calls) == 1
    ex.assert_correct(toy, counted, xs=[1, 2])  # other objects: graded again
    assert len(calls) == 2
    check(toy, counted, xs=xs)
    with pytest.raises(AssertionError, match="not yet"):
        ex.assert_correct(toy, lambda xs: 0, xs=xs)


def test_grader_registration_refuses_bad_ids_missing_hints_and_duplicates(toy):
    with pytest.raises(ValueError, match="not 'NN.name'"):
        ex.grader("gae", hints=("h",))
    with pytest.raises(ValueError, match="at least one hint"):
        ex.grader("99.other", hints=())
    with pytest.raises(ValueError, match="registered twice"):
        ex.grader(toy, hints=("h",))(lambda answer: None)
    with pytest.raises(KeyError, match="no exercise '99.nothing'"):
        check("99.nothing", 1.0)
    with pytest.raises(KeyError, match="not an exercise id"):
        check("nothing", 1.0)


def test_a_grader_that_returns_neither_none_nor_a_message_is_a_bug(toy):
    ex.grader("99.broken", hints=("h",))(lambda answer: False)
    with pytest.raises(TypeError, match="must return None or a message"):
        check("99.broken", 1.0)


def test_off_by_never_gives_the_expected_value_away():
    assert ex.off_by(101.0, 100.0) == "close, but too high (within 5%)"
    assert ex.off_by(80.0, 100.0) == "too low"
    assert ex.off_by(300.0, 100.0) == "far too high (off by more than a factor of two)"
    assert ex.off_by(-1.0, 100.0) == "its sign is wrong"
    for a in (101.0, 80.0, 300.0, 7.0):
        assert "100" not in ex.off_by(a, 100.0)


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


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def has_region(cell) -> bool:
    return course.BEGIN_SOLUTION in cell.source


def in_nbgrader_form(path) -> bool:
    """Converted to the exercise contract (issue 18): nbgrader's solution regions and hidden tests."""
    return any(c.cell_type == "code" and (has_region(c) or course.BEGIN_HIDDEN_TESTS in c.source)
               for c in nbformat.read(path, as_version=4).cells)


CONVERTED = [p for p in NOTEBOOKS if in_nbgrader_form(p)]


def exercise_calls(source: str, function: str) -> list[tuple[str, str, str]]:
    """``(exercise id, the answer's name, the other arguments as source)`` of every top-level
    ``function("NN.name", answer, ...)`` call in ``source``."""
    out = []
    for node in parse(source).body:
        call = node.value if isinstance(node, ast.Expr) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == function:
            first, second, *rest = call.args + [None, None]
            assert isinstance(first, ast.Constant) and isinstance(second, ast.Name), ast.unparse(call)
            context = ", ".join([ast.unparse(a) for a in call.args[2:]] + [ast.unparse(k) for k in call.keywords])
            out.append((first.value, second.id, context))
    return out


def graded_checks(nb) -> list[tuple[int, str, str, str]]:
    """``(cell index, exercise id, the learner's name, the context arguments)`` per check cell
    (a cell with hidden tests: nbgrader grades it)."""
    out = []
    for i, c in code_cells(nb):
        if course.BEGIN_HIDDEN_TESTS in c.source:
            found = exercise_calls(course.clear_regions(c.source), "check")
            assert len(found) == 1, f"cell {i}: a cell with hidden tests holds one check(\"NN.name\", answer, ...) call"
            out.append((i, *found[0]))
    return out


def test_nbgrader_metadata_is_derived_from_the_markers():
    for path in CONVERTED:
        nb = course.with_nbgrader_metadata(nbformat.read(path, as_version=4), path.name)
        metas = [nbgrader_meta(c) for c in nb.cells if nbgrader_meta(c)]
        ids = [m["grade_id"] for m in metas]
        assert len(ids) == len(set(ids)), f"{path.name}: grade ids repeat"
        graded = [m for m in metas if m["grade"]]
        assert [m["grade_id"] for m in graded] == [e.replace(".", "_") for _, e, _, _ in graded_checks(nb)]
        assert all(m["points"] == 1 and m["locked"] and not m["solution"] for m in graded)
        assert sum(m["solution"] for m in metas) == sum(has_region(c) for c in nb.cells if c.cell_type == "code")
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS\nassert True\n### END HIDDEN TESTS")])
    with pytest.raises(ValueError, match="cell 0: a cell with hidden tests needs one check"):
        course.with_nbgrader_metadata(bad, "x.ipynb")


def test_the_first_notebooks_are_converted():
    assert {p.name[:2] for p in CONVERTED} >= {"01", "02", "03"}


@pytest.mark.parametrize("path", CONVERTED, ids=[p.name for p in CONVERTED])
def test_every_exercise_is_a_solution_region_and_a_graded_check_with_its_hidden_test(path):
    nb = nbformat.read(path, as_version=4)
    assert not [i for i, c in code_cells(nb) if is_solution(c)], "older-form solution cells left"
    for i, c in code_cells(nb):
        course.clear_regions(c.source, f"{path.name} cell {i}")  # well formed
    checks = graded_checks(nb)
    assert len(checks) >= 3, f"{path.name}: expected at least 3 exercises, found {len(checks)}"
    seen = set()
    for i, ex_id, name, context in checks:
        cell = nb.cells[i]
        assert ex_id.startswith(path.name[:2] + ".") and ex_id not in seen, f"{path.name} cell {i}: id {ex_id}"
        seen.add(ex_id)
        ex.get_grader(ex_id)  # registered
        assert exercise_calls(cell.source, "assert_correct") == [(ex_id, name, context)], \
            f"{path.name} cell {i}: the hidden test must call assert_correct with the check's arguments"
        assert len(parse(course.clear_regions(cell.source)).body) == 1, f"{path.name} cell {i}: only the check in a check cell"
        # the learner's cell: the nearest solution cell before the check defines `name`
        sol = max(j for j, c in code_cells(nb) if j < i and has_region(c))
        assert name in assigned_names(parse(nb.cells[sol].source)), f"{path.name} cell {sol} does not define {name}"
        student = parse(course.clear_regions(nb.cells[sol].source))
        stubs = [n for n in student.body if isinstance(n, ast.FunctionDef) and n.name == name]
        if stubs:  # a function: docstring + "# YOUR CODE HERE" (+ maybe a raise NotImplementedError) in the student copy
            body = stubs[0].body
            assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), f"{path.name}: {name} needs a docstring"
            assert len(body) == 1 or (len(body) == 2 and isinstance(body[1], ast.Raise) and "NotImplementedError" in ast.unparse(body[1])), \
                f"{path.name}: {name}'s stub is its docstring (and at most a raise NotImplementedError)"
        else:  # a value: `name = None` first
            first = student.body[0]
            assert isinstance(first, ast.Assign) and first.targets[0].id == name and first.value.value is None, \
                f"{path.name} cell {sol}: the learner's cell starts with `{name} = None`"
            assert len(student.body) == 1, f"{path.name} cell {sol}: only `{name} = None` outside the solution region"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_a_student_copy_needs_nothing_a_solution_defines(path):
    """Names bound only by solutions (regions, or older-form solution cells) are never read by a
    cell of the student copy after them."""
    nb = nbformat.read(path, as_version=4)
    defined: set[str] = set()
    solution_only: dict[str, int] = {}
    for i, c in code_cells(nb):
        full = assigned_names(parse(c.source))
        if is_solution(c):
            student_src = None
        else:
            student_src = course.clear_regions(c.source)
            tree = parse(student_src)
            needs = {n: solution_only[n] for n in loaded_names(tree) - assigned_names(tree) if n in solution_only}
            assert needs == {}, f"{path.name} cell {i} reads names only a solution defines (name: cell): {needs}"
        own = assigned_names(parse(student_src)) if student_src is not None else set()
        for n in full - own - defined:
            solution_only.setdefault(n, i)
        defined |= own
        for n in own:
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
        regions = [c for c in original.cells if c.cell_type == "code" and has_region(c)]
        assert solutions or regions, f"{path.name} has no solution to remove"
        assert not any(is_solution(c) for c in copy.cells)
        assert len(copy.cells) == len(original.cells) - len(solutions)
        code = "\n".join(c.source for c in copy.cells if c.cell_type == "code")
        for marker in (course.BEGIN_SOLUTION, course.END_SOLUTION, course.BEGIN_HIDDEN_TESTS, "assert_correct("):
            assert marker not in code, f"{path.name}: {marker!r} left in the student copy"
        assert code.count(course.CODE_STUB) == len(regions)
        assert all(c.outputs == [] and c.execution_count is None for c in copy.cells if c.cell_type == "code")
    assert all(p.read_bytes() == b for p, b in committed.items())  # the committed notebooks are untouched


def test_clear_regions_stubs_solutions_keeps_indentation_drops_hidden_tests_and_refuses_broken_regions():
    src = ("answer_1 = None\n### BEGIN SOLUTION\nanswer_1 = 42\n### END SOLUTION\n"
           "def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
           "check('01.x', f)\n### BEGIN HIDDEN TESTS\nassert_correct('01.x', f)\n### END HIDDEN TESTS")
    assert course.clear_regions(src) == ("answer_1 = None\n# YOUR CODE HERE\n"
                                         "def f(x):\n    \"\"\"doc\"\"\"\n    # YOUR CODE HERE\ncheck('01.x', f)")
    for broken, words in [("### BEGIN SOLUTION\nx = 1", "never closed"), ("x = 1\n### END SOLUTION", "without"),
                          ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n", "inside a region")]:
        with pytest.raises(ValueError, match=words):
            course.clear_regions(broken, "nb.ipynb, cell 3")


# --- notebooks 01-03: every grader takes the right answer and refuses two plausible wrong ones -------


def formatted(v: float) -> list[str]:
    """How a number could show up in a text: the ways the course prints numbers."""
    found = {f"{v:.2f}", f"{v:.3f}", f"{v:.4f}", f"{v:.4g}", f"{v:.6g}", repr(v), f"{v:,.0f}"}
    return sorted(f for f in found if len(f.strip("-0.,")) >= 3)  # "2" or "0.00" would match anything


@pytest.fixture(scope="module")
def nb_objects():
    """The notebooks' own objects the checks take as context (quick mode's posterior and sizes)."""
    import pandas as pd

    from helpers.baselines import Evaluator, HolidayRule, even_pacing
    from helpers.bayes import load_posterior
    from helpers.env import EnvConfig

    draws = load_posterior(quick=True)
    config = EnvConfig()
    cpc_config = EnvConfig(reward="neg_log_cpc")
    cpc_table = Evaluator(draws, cpc_config, n_months=50, seed=1).table(
        {"even pacing": even_pacing, "pinch, dump on the last day": lambda obs: -np.ones((len(obs), 1)),
         "holiday rule (2x)": HolidayRule(2.0, cpc_config)})
    assert isinstance(cpc_table, pd.DataFrame)
    return {"draws": draws, "mean_point": draws.mean(), "config": config,
            "evaluator": Evaluator(draws, config, n_months=50, seed=1), "cpc_table": cpc_table}


def exercise_cases(o):
    """``{id: (context, right answer, [(wrong answer, words of its message)] * 2)}``."""
    from scipy import stats

    from helpers.data import TRUE_PARAMS, load_daily
    from helpers.plots import loglog_slope

    df = load_daily()
    y24 = df[df["date"].dt.year == 2024]
    cpc = y24["spend"].sum() / y24["clicks"].sum()
    s = loglog_slope(df["spend"], df["clicks"])[0]
    rel = df["spend"] / df.groupby(df["date"].dt.to_period("M"))["spend"].transform("mean")
    uplift = rel[df["holiday"] == 1].mean() / rel[df["holiday"] == 0].mean()
    raw = df.loc[df["holiday"] == 1, "spend"].mean() / df.loc[df["holiday"] == 0, "spend"].mean()
    post, mp = o["draws"], o["mean_point"]
    p = float(np.mean(post.elasticity < 1))
    A, C = int(df["acquisitions"].sum()), int(df["clicks"].sum())
    ratio = np.sqrt(1 + 300_000 / post.imp_alpha.mean())
    e = mp.elasticity[0]
    gap = o["cpc_table"].loc["even pacing", "mean_clicks"] - o["cpc_table"].loc["pinch, dump on the last day", "mean_clicks"]
    return {
        "01.cpc_2024": ({}, cpc, [((y24["spend"] / y24["clicks"]).mean(), "mean of the daily costs"), (1 / cpc, "inverse")]),
        "01.doubling": ({}, 2**s, [(s, "the slope itself"), (2 ** (TRUE_PARAMS["imp_slope"] * TRUE_PARAMS["clk_slope"]), "true elasticity")]),
        "01.holiday_uplift": ({}, uplift, [(raw, "compares raw spends"), (uplift - 1, "minus 1")]),
        "01.cpm_doubling": ({}, 2**0.1, [(2**0.9, "how impressions grow"), (2**-0.1, "inverse")]),
        "02.p_diminishing": ({}, p, [(1 - p, "opposite") if p > 0.5 else (0.5, "far"), (1.5, "between 0 and 1")]),
        "02.conjugate_mean": ({}, stats.beta(1 + A, 1 + C - A).mean(), [(A / C, "maximum-likelihood"), (post.acq_rate.mean(), "sampler's estimate")]),
        "02.nb_sd_ratio": ({}, ratio, [(ratio**2, "variances"), (1 / ratio, "inverse")]),
        "02.coverage_threshold": ({"hdi_prob": 0.94}, 89, [(94, "too strict"), (80, "too lenient")]),
        "03.cpc_halving": ({"mean_point": mp}, 0.5 ** (1 - e), [(0.5**e, "clicks"), (2 ** (1 - e), "doubling")]),
        "03.pinch_clicks_gap": ({"cpc_table": o["cpc_table"]}, gap, [(-gap, "sign is reversed"), (gap / 3, "too low")]),
        "03.oracle_ceiling": ({}, "yes", [("no", "what does the oracle know"), (True, '"yes" or "no"')]),
    }


def test_every_grader_of_01_to_03_is_tested_here(nb_objects):
    import importlib

    for nb in ("01", "02", "03"):
        importlib.import_module(f"helpers.exercises.nb{nb}")
    ids = {g for g in ex.GRADERS if g[:2] in ("01", "02", "03")}
    function_ids = {"01.nb_draw", "02.clicks_model", "02.sampling", "03.simulate_day", "03.best_holiday_rule",
                    "03.observation_policy"}
    assert ids == set(exercise_cases(nb_objects)) | function_ids


def test_value_graders_take_the_right_answer_and_refuse_plausible_wrong_ones_without_the_value(nb_objects, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "1")  # the graders read quick mode's posterior, like the fixture
    monkeypatch.delenv("COURSE_STRICT", raising=False)
    student = {p.name[:2]: "\n".join(c.source for c in course.student_copy(nbformat.read(p, as_version=4)).cells)
               for p in NOTEBOOKS if p.name[:2] in ("01", "02", "03")}
    for ex_id, (context, right, wrongs) in exercise_cases(nb_objects).items():
        ex.reset_tries()
        assert ex.grade(ex_id, right, **context).status == "correct", ex_id
        for k, (wrong, words) in enumerate(wrongs, 1):
            check(ex_id, wrong, **context)
            out = capsys.readouterr().out
            assert f"{ex_id}: not yet: " in out and words in out and "hint" in out, (ex_id, wrong, out)
            assert ("hint 2:" in out) == (k == 2), (ex_id, out)  # the stronger hint from the second try on
            if not isinstance(right, str):
                leaks = [f for f in formatted(float(right)) if f in out]
                assert leaks == [], f"{ex_id}: the output shows the expected value ({leaks}): {out}"
                leaks = [f for f in formatted(float(right)) if len(f) >= 5 and f in student[ex_id[:2]]]
                assert leaks == [], f"{ex_id}: the student copy's source holds the expected value ({leaks})"


def test_the_nb_draw_grader_takes_any_correct_draw_and_names_what_a_wrong_one_gets_wrong(capsys, monkeypatch):
    """01.nb_draw: the mean, variance and share of zeros of NB(mu, alpha), whichever way it is drawn."""
    from scipy import stats

    from helpers.data import nb_sample

    monkeypatch.delenv("COURSE_STRICT", raising=False)
    right = {
        "Gamma-mixed Poisson": lambda rng, mu, alpha: rng.poisson(rng.gamma(alpha, mu / alpha)),
        "numpy's negative_binomial": lambda rng, mu, alpha: rng.negative_binomial(alpha, alpha / (alpha + mu)),
        "scipy's nbinom": lambda rng, mu, alpha: stats.nbinom.rvs(alpha, alpha / (alpha + mu), random_state=rng),
        "helpers.data.nb_sample": nb_sample,  # the course's copy, that drew the data set
    }
    for name, f in right.items():
        assert ex.grade("01.nb_draw", f).status == "correct", name
    wrong = [  # (answer, words of its message)
        (lambda rng, mu, alpha: rng.poisson(mu), "vary far too little"),  # a plain Poisson
        (lambda rng, mu, alpha: rng.poisson(rng.gamma(1 / alpha, mu * alpha)),  # statsmodels' alpha, the inverse
         "the variance of your counts at the impressions-sized mean is far too high"),
        (lambda rng, mu, alpha: rng.negative_binomial(alpha, mu / (alpha + mu)),  # numpy's p swapped: a wrong mean
         "the mean of your counts at the impressions-sized mean is far too low"),
        (lambda rng, mu, alpha: rng.gamma(alpha, mu / alpha), "not whole numbers"),  # the rate, no Poisson count
        (lambda rng, mu, alpha: np.round(rng.gamma(alpha, mu / alpha)),  # rounded: short of the Poisson's variance
         "the variance of your counts at the small mean is too low"),
        (lambda rng, mu, alpha: np.random.default_rng().poisson(np.random.default_rng().gamma(alpha, mu / alpha)),
         "draw with the rng you are given"),
        (lambda rng, mu, alpha: rng.poisson(rng.gamma(alpha, mu / alpha))[:10], "one count per element of mu"),
    ]
    for k, (answer, words) in enumerate(wrong):
        ex.reset_tries()
        check("01.nb_draw", answer)
        check("01.nb_draw", answer)
        out = capsys.readouterr().out
        assert out.count("01.nb_draw: not yet: ") == 2 and words in out, (k, out)
        assert "hint 1:" in out and "hint 2:" in out, (k, out)  # the stronger hint on the second try
    assert ex.grade("01.nb_draw", lambda rng, mu, alpha: None).status == "unanswered"  # the student copy's stub
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(AssertionError, match="vary far too little"):
        check("01.nb_draw", lambda rng, mu, alpha: rng.poisson(mu))


def test_the_simulator_grader_checks_means_and_the_gamma_poisson_spread():
    def simulate_day(spend, draw, holiday, weekend, rng):
        mu_imp = np.exp(draw.imp_intercept + draw.imp_slope * np.log(spend) + draw.imp_holiday * holiday)
        imp = rng.poisson(rng.gamma(draw.imp_alpha, mu_imp / draw.imp_alpha))
        mu_clk = np.exp(draw.clk_intercept + draw.clk_slope * np.log(np.maximum(imp, 1)) + draw.clk_holiday * holiday
                        + draw.clk_weekend * weekend)
        clk = np.minimum(rng.poisson(rng.gamma(draw.clk_alpha, mu_clk / draw.clk_alpha)), imp)
        return imp, clk, rng.binomial(clk, draw.acq_rate)

    def plain_poisson(spend, draw, holiday, weekend, rng):  # the mean right, the spread not
        imp = rng.poisson(np.exp(draw.imp_intercept + draw.imp_slope * np.log(spend) + draw.imp_holiday * holiday))
        clk = rng.poisson(np.exp(draw.clk_intercept + draw.clk_slope * np.log(imp) + draw.clk_holiday * holiday
                                 + draw.clk_weekend * weekend))
        return imp, clk, rng.binomial(clk, draw.acq_rate)

    def no_weekend(spend, draw, holiday, weekend, rng):
        return simulate_day(spend, draw, holiday, 0, rng)

    def stub(spend, draw, holiday, weekend, rng):
        """the student copy's stub"""

    from helpers.exercises import nb03

    assert set(nb03._core_days()) == {"an ordinary weekday", "a weekend day", "a holiday"}
    assert ex.grade("03.simulate_day", simulate_day).status == "correct"
    assert "vary far too little" in ex.grade("03.simulate_day", plain_poisson).message
    assert ex.grade("03.simulate_day", no_weekend).message == "the mean of the clicks on a weekend day is too low"
    assert ex.grade("03.simulate_day", stub).status == "unanswered"


def test_the_policy_graders_evaluate_the_learners_policy(nb_objects):
    from helpers.env import OBS_NAMES

    o = nb_objects
    ev = o["evaluator"]
    grid = [1.0, 2.0, 3.0, 5.0]
    from helpers.baselines import HolidayRule

    scores = {m: ev.evaluate(HolidayRule(m, ev.config))["pct_of_optimum"] for m in grid}
    best = max(scores, key=scores.get)
    assert ex.grade("03.best_holiday_rule", best, evaluator=ev, multipliers=grid).status == "correct"
    worst = min(scores, key=scores.get)
    assert "another multiplier of the grid scores higher" in ex.grade("03.best_holiday_rule", worst, evaluator=ev, multipliers=grid).message
    assert "one of the multipliers" in ex.grade("03.best_holiday_rule", 1.7, evaluator=ev, multipliers=grid).message

    mp, cfg = o["mean_point"], o["config"].resolved()
    e = mp.elasticity[0]
    wh, ww = mp.holiday_boost[0] ** (1 / (1 - e)), mp.weekend_boost[0] ** (1 / (1 - e))

    def policy(obs):
        col = {k: obs[:, OBS_NAMES.index(k)] for k in ("holiday_today", "holidays_left", "weekend_days_left", "dow_sin", "dow_cos")}
        weekend = np.round(np.arctan2(col["dow_sin"], col["dow_cos"]) * 7 / (2 * np.pi)) % 7 >= 5
        m = wh ** col["holiday_today"] * ww**weekend / (1 + (wh - 1) * col["holidays_left"] + (ww - 1) * col["weekend_days_left"])
        return (np.log(m) / np.log(cfg.max_multiplier))[:, None]

    assert ex.grade("03.observation_policy", policy, evaluator=ev).status == "correct"
    assert "should reach 99%" in ex.grade("03.observation_policy", lambda obs: np.zeros((len(obs), 1)), evaluator=ev).message
    assert "shape" in ex.grade("03.observation_policy", lambda obs: np.zeros(len(obs)), evaluator=ev).message


def test_the_model_and_sampling_graders_compare_with_the_course(monkeypatch):
    import pymc as pm

    def add_clicks_regression(model, x, df, weekend=True, slope_sd=0.5):
        with model:
            a = pm.Normal("clk_intercept_c", 6.0, 3.0)
            b = pm.Normal("clk_slope", 1.0, slope_sd)
            h = pm.Normal("clk_holiday", 0.0, 0.5)
            w = pm.Normal("clk_weekend", 0.0, 0.5)
            acq = pm.Beta("acq_rate", 1.0, 1.0)
            cv = pm.HalfNormal("clk_cv", 0.5)
            mu = pm.math.exp(a + b * x["log_imp_c"] + h * x["holiday"] + (w * x["weekend"] if weekend else 0))
            pm.NegativeBinomial("clicks", mu=mu, alpha=1 / cv**2, observed=df.clicks.to_numpy(), dims="day")
            pm.Binomial("acquisitions", n=df.clicks.to_numpy(), p=acq, observed=df.acquisitions.to_numpy(), dims="day")
        return model

    assert ex.grade("02.clicks_model", add_clicks_regression).status == "correct"
    assert ex.grade("02.clicks_model", lambda m, x, df: add_clicks_regression(m, x, df, weekend=False)).message.startswith(
        "the likelihood of clicks differs")
    assert ex.grade("02.clicks_model", lambda m, x, df: add_clicks_regression(m, x, df, slope_sd=1.0)).message == \
        "the prior of clk_slope differs from the course's (see the prior table)"

    def sample_posterior(model, settings):
        return pm.sample(model=model, nuts_sampler="nutpie", chains=settings.chains, tune=settings.tune,
                         draws=settings.draws, random_seed=settings.seed, progressbar=False)

    assert ex.grade("02.sampling", sample_posterior).status == "correct"
    swapped = ex.grade("02.sampling", lambda m, s: sample_posterior(m, s.__class__(chains=s.chains, tune=s.draws, draws=s.tune)))
    assert "use the settings' sizes" in swapped.message
    prior = ex.grade("02.sampling", lambda m, s: pm.sample_prior_predictive(draws=s.draws, model=m))
    assert prior.status == "wrong"
