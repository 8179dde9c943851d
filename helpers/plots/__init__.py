"""Plotting helpers shared by the notebooks (matplotlib + seaborn), grouped by what they show:

* :mod:`~helpers.plots.data`: the marketing data (notebook 01);
* :mod:`~helpers.plots.posterior`: the Bayesian model, its predictions and recovered parameters (02, 06);
* :mod:`~helpers.plots.plans`: spend plans over the days of a month (03, 06);
* :mod:`~helpers.plots.learning`: PPO and the budget agent learning (04, 05);
* :mod:`~helpers.plots.style`: the palette, :func:`set_style` and the shared drawing helpers.

Functions return the matplotlib ``Figure`` (or ``Axes``) they drew on, so tests can inspect what was drawn.
Every name is importable as ``helpers.plots.<name>``.
"""

from helpers.plots.style import COURSE_PALETTE, set_style, HOLIDAY_COLOR, TREND_COLOR, WEEKEND_COLOR, WEEKDAY_NAMES, POSTERIOR_COLOR, POINT_COLOR, POISSON_COLOR  # noqa: F401
from helpers.plots.data import funnel_rates, plot_funnel, plot_daily_spend, plot_impressions_clicks, plot_cpc, loglog_slope, plot_diminishing_returns, plot_holiday_comparison, weekday_ctr, plot_weekday_ctr, plot_budget_pacing  # noqa: F401
from helpers.plots.posterior import plot_nb_vs_poisson, plot_prior_predictive, plot_regression_lines, plot_ppc_band, plot_recovery, plot_campaign_ppc, plot_channel_slopes, plot_adstock_posterior  # noqa: F401
from helpers.plots.plans import plot_allocation, plot_played_month, plot_budget_paths, plot_channel_heatmaps  # noqa: F401
from helpers.plots.learning import PPO_PANELS, plot_ppo_diagnostics, LiveTrainingPlot, BUDGET_PANELS, plot_budget_training, LiveBudgetPlot, plot_seed_band, plot_epsilon_sweep, plot_settling, plot_new_data_costs  # noqa: F401
