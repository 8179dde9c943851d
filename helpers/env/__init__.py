"""The budget-pacing environment: the Bayesian funnel of notebook 02 turned into a simulator (notebooks 03, 06).

One episode is one calendar month under a fixed budget; each day the agent chooses how much of it
to spend and the funnel answers with impressions, clicks and acquisitions. One concept per module:

* :mod:`~helpers.env.calendar`: the months, their holidays and weekends, the data's reference figures;
* :mod:`~helpers.env.history`: several channels, what the campaign data say (``ChannelHistory``, 06);
* :mod:`~helpers.env.config`: ``EnvConfig``, every knob; :mod:`~helpers.env.spaces`: observations and actions;
* :mod:`~helpers.env.market`: one channel or several, the tables the core reads (``Market``);
* :mod:`~helpers.env.core`: ``PacingCore``, the dynamics of a batch of months (the only copy; one channel is K = 1);
* :mod:`~helpers.env.envs`: ``BudgetPacingEnv`` (one month) and ``BudgetPacingVectorEnv`` (N, SAME_STEP autoreset).

Quick reference: ``envs = BudgetPacingVectorEnv(draws, num_envs=64)``; ``obs, _ = envs.reset(seed=0)``
(64, 9); ``envs.step(actions)`` with actions (64, 1) in [-1, 1]; several channels: ``ChannelDraws``
and ``config=channel_config()``, actions (n, 1 + K). Every name is importable as ``helpers.env.<name>``.
"""

from helpers.env.calendar import (_PAD, EVAL_MONTHS, MAX_DAYS, TRAIN_MONTHS, Calendar, HistoricalStats, _check_months,
                                  historical_stats, month_calendar, month_range)
from helpers.env.config import ACTION_TRANSFORMS, REWARDS, EnvConfig, channel_config
from helpers.env.core import CORE_PARAM_NAMES, EnvState, PacingCore, _param_table
from helpers.env.envs import BudgetPacingEnv, BudgetPacingVectorEnv
from helpers.env.history import ChannelHistory, channel_history
from helpers.env.market import Market, channel_market, funnel_market
from helpers.env.spaces import (_CHANNEL_OBS_BOUNDS, _CPC_OBS, _DOW_COS, _DOW_SIN, _TINY, CARRY_CLIP, CHANNEL_COMMON_OBS,
                                CHANNEL_OBS_DESCRIPTIONS, CHANNEL_OBS_FEATURES, CPC_CLIP, LOGIT_OFF, LOGIT_ON_FLOOR, OBS_DESCRIPTIONS,
                                OBS_DIM, OBS_HIGH, OBS_LOW, OBS_NAMES, _checked_index, action_for_share, action_space,
                                channel_obs_names, logits_for_split, observation_space, spend_from_action, split_weights)

__all__ = [
    "ACTION_TRANSFORMS", "CARRY_CLIP", "CHANNEL_COMMON_OBS", "CHANNEL_OBS_DESCRIPTIONS", "CHANNEL_OBS_FEATURES", "CORE_PARAM_NAMES",
    "CPC_CLIP", "EVAL_MONTHS", "LOGIT_OFF", "LOGIT_ON_FLOOR", "MAX_DAYS", "OBS_DESCRIPTIONS", "OBS_DIM", "OBS_HIGH", "OBS_LOW",
    "OBS_NAMES", "REWARDS", "TRAIN_MONTHS", "BudgetPacingEnv", "BudgetPacingVectorEnv", "Calendar", "ChannelHistory",
    "EnvConfig", "EnvState", "HistoricalStats", "Market", "PacingCore", "action_for_share", "action_space", "channel_config",
    "channel_history", "channel_market", "channel_obs_names", "funnel_market", "historical_stats", "logits_for_split", "month_calendar", "month_range",
    "observation_space", "spend_from_action", "split_weights", "_PAD", "_CHANNEL_OBS_BOUNDS", "_CPC_OBS", "_DOW_COS",
    "_DOW_SIN", "_TINY", "_check_months", "_checked_index", "_param_table",
]
