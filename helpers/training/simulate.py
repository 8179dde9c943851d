"""New data: one more month simulated from the ground truth, the data file extended, the agent warm-started (notebooks 05, 06).

"New data every day" (notebook 05): :func:`simulate_month` plays a month with the true
parameters and the marketers' pacing, :func:`extended_data_path` writes the data plus it,
:func:`warm_start` copies an agent onto the refitted posterior, :func:`resolve_optimum_s` times
the optimiser. :func:`simulate_channel_data` (notebook 06) replays the marketers' channel spends
through the env's dynamics, for parameter recovery.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from helpers import bayes, data
from helpers.baselines import HumanPolicy, optimum_policy, play_month
from helpers.bayes import ChannelData, ChannelDraws, FunnelDraws
from helpers.env import EVAL_MONTHS, EnvConfig, month_calendar
from helpers.ppo import PPO
from helpers.training.config import NUM_ENVS, make_envs

NEW_DATA_DIR = bayes.CACHE_DIR / "new_data"


def simulate_month(month: str, *, params: FunnelDraws | None = None, config: EnvConfig | None = None, seed: int = 0) -> pd.DataFrame:
    """One more month of data, simulated from the ground truth as the marketers would have paced it.

    The month is played through the environment's dynamics (the one copy of the funnel:
    ``helpers.env.PacingCore``) with the true parameters (``helpers.data.TRUE_PARAMS`` unless
    ``params``), the human pacing rule (``helpers.baselines.HumanPolicy``) and the monthly budget
    of ``config``. Returns the data file's columns (``helpers.data.COLUMNS``), ``date`` as
    datetime, ``spend`` rounded to cents.
    """
    truth = params or FunnelDraws.from_dict(data.TRUE_PARAMS)
    cfg = (config or EnvConfig()).resolved()
    human = HumanPolicy(dataclasses.replace(cfg, months=(month,)), seed=seed)
    df = play_month(human, truth, month, cfg, draw=0, seed=seed)
    df["spend"] = df["spend"].round(2)
    for c in data.COUNT_COLUMNS:
        df[c] = df[c].astype(np.int64)
    df["holiday"] = df["holiday"].astype(np.int64)
    return df[data.COLUMNS].reset_index(drop=True)


def extended_data_path(new: pd.DataFrame, base_path: str | Path | None = None, directory: str | Path = NEW_DATA_DIR) -> Path:
    """Write the historical data plus ``new`` rows as ``directory/marketing_daily_plus_<last month>.csv``.

    Atomic; validated on the way back by ``helpers.data.load_daily`` (consecutive days, counts).
    Pass the returned path to ``helpers.bayes.load_posterior(data_path=..., cache_dir=directory)``
    to fit (and cache) the posterior on the extended data without touching the main cache.
    """
    base = data.load_daily(base_path or data.DATA_PATH)
    both = pd.concat([base, new[data.COLUMNS]], ignore_index=True)
    both["date"] = pd.to_datetime(both["date"]).dt.strftime("%Y-%m-%d")
    last = pd.Timestamp(both["date"].iloc[-1]).strftime("%Y-%m")
    path = Path(directory) / f"marketing_daily_plus_{last}.csv"
    data.atomic_write_text(path, data.to_csv_text(both))
    data.load_daily(path)  # raises DataValidationError naming file/column/row if anything is off
    return path


def warm_start(agent: PPO, draws: FunnelDraws, env_config: EnvConfig | None = None, *, num_envs: int = NUM_ENVS,
               lr: float | None = None) -> PPO:
    """A copy of ``agent`` (weights, optimiser, normalisers) attached to a fresh env on ``draws``.

    The original is left untouched. ``lr`` replaces the starting learning rate of the copy
    (annealed to 0 over its next ``learn`` call, as always).
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="warm-start-") as tmp:
        path = agent.save(Path(tmp) / "agent.pt")
        copy = PPO.load(path, envs=make_envs(draws, env_config, num_envs))
    if lr is not None:
        copy.config = dataclasses.replace(copy.config, lr=float(lr))
    return copy


def resolve_optimum_s(draws: FunnelDraws, config: EnvConfig | None = None, months: Sequence[str] = EVAL_MONTHS) -> tuple[float, Any]:
    """Wall time to re-solve the open-loop optimum (SLSQP) for every month of ``months``; and the policy."""
    t0 = time.perf_counter()
    policy = optimum_policy(draws, config)
    policy.share_table(month_calendar(tuple(months)))
    return time.perf_counter() - t0, policy


def simulate_channel_data(truth: ChannelDraws, config: EnvConfig | None = None, seed: int = 0) -> ChannelData:
    """The channel data set simulated from ``truth`` (one parameter point): the marketers' own
    daily spends per channel (the data's) replayed through the env's dynamics (the one copy of
    the channel funnel, carryover included), with the data's calendar and active days.

    For parameter recovery: fit the channel model to the result and compare with ``truth``.
    """
    from helpers.baselines import historical_replay_policy
    from helpers.env import PacingCore, channel_config

    if truth.n_draws != 1:
        raise ValueError(f"simulate_channel_data needs one parameter point, got {truth.n_draws} draws")
    cfg = (config or channel_config()).resolved()
    hist = cfg.channels
    core = PacingCore(truth, dataclasses.replace(cfg, months=hist.months, budget=None), n_envs=len(hist.months))
    core.seed(seed)
    core.start(np.arange(len(hist.months)), month_idx=np.arange(len(hist.months)), draw_idx=0)
    replay = historical_replay_policy(dataclasses.replace(cfg, months=hist.months, budget=None))
    spend, impressions, clicks = [], [], []
    for _ in range(int(hist.n_days.max())):
        core.step(replay(core.observe(), core.state()))
        spend.append(core.last_channel_spend.T.copy())  # (M, K)
        impressions.append(core.last_channel_impressions.T.copy())
        clicks.append(core.last_channel_clicks.T.copy())
    days = [(m, d) for m in range(len(hist.months)) for d in range(hist.n_days[m])]
    pick = lambda arr: np.array([arr[d][m] for m, d in days])  # noqa: E731  (T_total, K), calendar order
    dates = pd.DatetimeIndex([pd.Period(hist.months[m], "M").start_time + pd.Timedelta(days=d) for m, d in days])
    active = np.array([hist.active[m, d] for m, d in days])
    s = pick(spend)
    return ChannelData(dates, hist.channels, active, np.where(active, s, 0.0), pick(impressions), pick(clicks))
