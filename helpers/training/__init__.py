"""Training the budget agent: PPO on the budget-pacing env, measured as % of the optimum, cached (notebooks 05, 06).

Sits on top of the dependency chain, next to ``plots`` and ``widgets``: it imports ``env``,
``baselines`` and ``ppo`` and nothing imports it but ``widgets``, ``plan``, the notebooks and the
benchmarks. One concept per module:

* :mod:`~helpers.training.config`: ``BUDGET_PPO`` (tuned, with the measurements), the validation / test evaluators;
* :mod:`~helpers.training.run`: ``OptimumTracker``, ``train_budget_agent`` -> ``TrainingRun``;
* :mod:`~helpers.training.cache`: ``cached_training_run`` and the fingerprints that key it;
* :mod:`~helpers.training.compare`: the epsilon sweep, ``comparison_table``, ``daily_paths``, ``settle_step``;
* :mod:`~helpers.training.simulate`: new data (``simulate_month``, ``warm_start``, ``simulate_channel_data``).

Every name is importable as ``helpers.training.<name>``.
"""

from helpers.training.cache import (CACHE_DIR, CACHE_VERSION, ROOT, StaleTrainingCacheWarning, _eval_key, _jsonable,
                                    cached_training_run, calendar_fingerprint, code_files, code_fingerprint,
                                    draws_fingerprint, env_config_dict, load_run, read_json_cache, run_key, save_run,
                                    write_json_cache)
from helpers.training.compare import (SWEEP_COLUMNS, TABLE_COLUMNS, channel_daily_spend, comparison_table, daily_paths,
                                      epsilon_sweep, mean_curve, settle_step, sweep_summary)
from helpers.training.config import (BUDGET_PPO, DEFAULT_STEPS, EVAL_EVERY, N_EVAL_MONTHS, NUM_ENVS, SWEEP_EPSILONS,
                                     VALIDATION_MONTHS, VALIDATION_SEED, budget_ppo_config, make_envs, test_evaluator,
                                     validation_evaluator)
from helpers.training.run import CURVE_COLUMNS, OptimumTracker, TrainingRun, train_budget_agent
from helpers.training.simulate import (NEW_DATA_DIR, extended_data_path, resolve_optimum_s, simulate_channel_data,
                                       simulate_month, warm_start)

__all__ = [
    "BUDGET_PPO", "CACHE_DIR", "CACHE_VERSION", "CURVE_COLUMNS", "DEFAULT_STEPS", "EVAL_EVERY", "NEW_DATA_DIR",
    "NUM_ENVS", "N_EVAL_MONTHS", "ROOT", "SWEEP_COLUMNS", "SWEEP_EPSILONS", "TABLE_COLUMNS", "VALIDATION_MONTHS",
    "VALIDATION_SEED", "OptimumTracker", "StaleTrainingCacheWarning", "TrainingRun", "budget_ppo_config",
    "cached_training_run", "calendar_fingerprint", "channel_daily_spend", "code_files", "code_fingerprint",
    "comparison_table", "daily_paths", "draws_fingerprint", "env_config_dict", "epsilon_sweep", "extended_data_path",
    "load_run", "make_envs", "mean_curve", "read_json_cache", "resolve_optimum_s", "run_key", "save_run",
    "settle_step", "simulate_channel_data", "simulate_month", "sweep_summary", "test_evaluator",
    "train_budget_agent", "validation_evaluator", "warm_start", "write_json_cache", "_eval_key", "_jsonable",
]
