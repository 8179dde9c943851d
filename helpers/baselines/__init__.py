"""Baselines, the open-loop optimum, the oracle, and the one evaluation every policy goes through (notebooks 03, 05, 06).

A policy is any callable ``policy(obs) -> actions`` (or ``policy(obs, state)`` with ``needs_state =
True``); a trained agent plugs in as ``evaluator.evaluate(lambda obs: agent.predict(obs), name="PPO")``.
One concept per module:

* :mod:`~helpers.baselines.optimum`: the yardstick, the open-loop optimum of one month (SLSQP, closed form);
* :mod:`~helpers.baselines.channels`: the optimum over days x channels, with caps and carryover (06);
* :mod:`~helpers.baselines.policies`: even pacing, the holiday rule, the humans, ``OpenLoopPolicy`` of any plan;
* :mod:`~helpers.baselines.oracle`: ``OraclePolicy``, which knows each month's draw (the real upper bound);
* :mod:`~helpers.baselines.evaluator`: ``Evaluator`` (shared months, seeds, draws), ``play_month``.

Every name is importable as ``helpers.baselines.<name>``.
"""

from helpers.baselines.channels import (MIRROR_ITERATIONS, MIRROR_STEP, MIRROR_TOL, _channel_month, _channel_plan_actions,
                                        _ChannelMonth, _ChannelResponse, _common_adstock, _waterfill_power, channel_response,
                                        expected_channel_clicks, optimal_channel_allocation)
from helpers.baselines.evaluator import EVAL_SEED, Evaluator, _call_policy, _cvar, evaluate, play_month
from helpers.baselines.optimum import (OBJECTIVES, _day_flags, _shares_of_remaining, closed_form_allocation, expected_daily,
                                       optimal_allocation, response_terms)
from helpers.baselines.oracle import ORACLE_NAME, OraclePolicy, oracle_policy
from helpers.baselines.policies import (HOLIDAY_TODAY, HolidayRule, HumanPacing, HumanPolicy, OpenLoopPolicy, Policy, even_pacing,
                                        fit_human_pacing, historical_replay_policy, optimum_policy, proportional_policy,
                                        standard_policies)

__all__ = [
    "EVAL_SEED", "HOLIDAY_TODAY", "MIRROR_ITERATIONS", "MIRROR_STEP", "MIRROR_TOL", "OBJECTIVES", "ORACLE_NAME", "Evaluator",
    "HolidayRule", "HumanPacing", "HumanPolicy", "OpenLoopPolicy", "OraclePolicy", "Policy", "channel_response",
    "closed_form_allocation", "evaluate", "even_pacing", "expected_channel_clicks", "expected_daily", "fit_human_pacing",
    "historical_replay_policy", "optimal_allocation", "optimal_channel_allocation", "optimum_policy", "oracle_policy",
    "play_month", "proportional_policy", "response_terms", "standard_policies", "_channel_month", "_channel_plan_actions",
    "_ChannelMonth", "_ChannelResponse", "_common_adstock", "_waterfill_power", "_call_policy", "_cvar", "_day_flags",
    "_shares_of_remaining",
]
