"""The exercises of notebook 06 (helpers/exercises/nb06.py): for each id, the right answer passes, two
plausible wrong answers fail with what is wrong and a hint, and the expected value appears neither in
what the check prints nor in the student copy's source.

Right answers are computed here independently of the graders (the adstock by hand, loop by loop; the
plans with helpers.baselines directly), on the stand-in channel posterior (no fit needed).
"""

from __future__ import annotations

import re

import nbformat
import numpy as np
import pytest

from helpers import course
from helpers.baselines import channel_response, optimal_channel_allocation
from helpers.env import channel_config, channel_history
from helpers.exercises import check

from channel_fixtures import channel_posterior  # tests/ is on sys.path under pytest
from exercise_checks import assert_fails_with_hint, assert_student_copy_holds_no_solution, learner_kernel, shown  # noqa: F401  (learner_kernel: autouse)

NB06 = course.NOTEBOOKS_DIR / "06_many_channels_and_carryover.ipynb"
IDS = ["06.adstock", "06.yesterday_weight", "06.marginal_leader", "06.uncapped_multiple"]
MONTH = "2025-04"  # the notebook's SHOW_MONTH


def assert_right(capsys, exercise_id, answer, **context):
    check(exercise_id, answer, **context)
    assert capsys.readouterr().out.strip() == f"{exercise_id}: correct."


# --- 06.adstock: the learner writes the transform -------------------------------------------------


def adstock_by_hand(normalise=True, future=False, reverse_weights=False, wrap=False):
    """A learner's adstock, day by day and lag by lag, with one of the plausible mistakes switched on."""
    def adstock(spend, theta, n_lags):
        T, K = spend.shape
        x = np.zeros((T, K))
        for c in range(K):
            w = [(1 - theta[c]) * theta[c] ** j for j in range(n_lags)]
            if normalise:
                w = [v / (1 - theta[c] ** n_lags) for v in w]
            if reverse_weights:
                w = w[::-1]
            for t in range(T):
                for j in range(n_lags):
                    u = t + j if future else t - j
                    if 0 <= u < T:
                        x[t, c] += w[j] * spend[u, c]
                    elif wrap:
                        x[t, c] += w[j] * spend[u % T, c]
        return x
    return adstock


def test_06_adstock(capsys):
    assert_right(capsys, "06.adstock", adstock_by_hand())
    assert_fails_with_hint(capsys, "06.adstock", adstock_by_hand(normalise=False), says="sum to 1")
    assert_fails_with_hint(capsys, "06.adstock", adstock_by_hand(future=True), says="BEFORE it is spent")
    assert_fails_with_hint(capsys, "06.adstock", adstock_by_hand(reverse_weights=True), says="lag order is reversed")
    text = assert_fails_with_hint(capsys, "06.adstock", adstock_by_hand(wrap=True), says="count as 0")
    assert "hint 2" in text  # the fourth wrong try shows the stronger hint too
    assert_fails_with_hint(capsys, "06.adstock", lambda s, t, n: s[:-1], says="shape")
    check("06.adstock", lambda s, t, n: None)
    assert "not answered yet" in capsys.readouterr().out


# --- the three questions --------------------------------------------------------------------------


def test_06_yesterday_weight(capsys):
    theta, lags = 0.5, 28
    right = (1 - theta) * theta / (1 - theta**lags)
    assert_right(capsys, "06.yesterday_weight", right, theta=theta)
    assert_fails_with_hint(capsys, "06.yesterday_weight", (1 - theta) / (1 - theta**lags), expected=[right],
                           says="today's weight", theta=theta)
    assert_fails_with_hint(capsys, "06.yesterday_weight", (1 - theta) * theta**2 / (1 - theta**lags), expected=[right],
                           says="day before yesterday", theta=theta)


@pytest.fixture(scope="module")
def channels():
    """The stand-in posterior, the notebook's config, and the month's plan with and without the cap."""
    draws, config, hist = channel_posterior(), channel_config(cap_multiple=3.0), channel_history()
    h = hist.month_index([MONTH])[0]
    on = hist.active[h, : hist.n_days[h]].any(axis=0)
    response = channel_response(draws, config)
    plan = optimal_channel_allocation(draws, config, MONTH, response)
    marginal = response(plan.max(axis=0)[None, None, :])[1][0, 0]
    star = int(np.argmax(np.where(on, marginal, -np.inf)))
    uncapped = optimal_channel_allocation(draws, channel_config(cap_multiple=None), MONTH)
    return dict(draws=draws, config=config, hist=hist, on=on, star=star, uncapped_daily=float(uncapped[:, star].max()),
                context=dict(channels=hist.channels, draws=draws, config=config, month=MONTH))


def test_06_marginal_leader(capsys, channels):
    names, on, star = list(channels["hist"].channels), channels["on"], channels["star"]
    right = names[star]
    assert on.sum() >= 3 and not on.all()  # the month has other active campaigns and some that are off
    assert_right(capsys, "06.marginal_leader", right, **channels["context"])
    off = names[int(np.flatnonzero(~on)[0])]
    assert_fails_with_hint(capsys, "06.marginal_leader", off, expected=[right], says="does not run", **channels["context"])
    other = names[int(np.flatnonzero(on & (np.arange(len(names)) != star))[0])]
    assert_fails_with_hint(capsys, "06.marginal_leader", other, expected=[right], says="another campaign", **channels["context"])
    assert_fails_with_hint(capsys, "06.marginal_leader", "tv", expected=[right], says="not one of the campaigns",
                           **channels["context"])


def test_06_uncapped_multiple(capsys, channels):
    hist, star, daily = channels["hist"], channels["star"], channels["uncapped_daily"]
    right = daily / hist.max_daily_spend[star]
    assert right > 3.0  # without the cap the plan goes beyond it
    assert_right(capsys, "06.uncapped_multiple", right, **channels["context"])
    assert_fails_with_hint(capsys, "06.uncapped_multiple", daily, expected=[right], says="a daily spend", **channels["context"])
    assert_fails_with_hint(capsys, "06.uncapped_multiple", 3.0, expected=[right], says="the cap itself", **channels["context"])


# --- the student copy -----------------------------------------------------------------------------


def test_the_student_copy_holds_no_solution_and_no_expected_value():
    source = assert_student_copy_holds_no_solution(nbformat.read(NB06, as_version=4), at_least=10, name=NB06.name)
    assert "check_that(" not in source
    assert re.findall(r'check\("(06\.\w+)"', source) == IDS  # every exercise tested here, in the notebook's order
    assert "def adstock(spend, theta, n_lags):" in source  # the stub the learner fills in
    theta = 0.5  # the notebook's THETA_WHAT_IF: yesterday's weight appears nowhere
    for s in shown((1 - theta) * theta / (1 - theta**28)):
        assert s not in source, s
