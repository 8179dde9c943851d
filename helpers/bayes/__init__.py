"""The Bayesian funnel in PyMC (notebooks 02 and 06), one concept per module:

* :mod:`~helpers.bayes.model`: priors, the count regression, the funnel and campaign models;
* :mod:`~helpers.bayes.fit`: sampling with nutpie / PyMC and the convergence checks;
* :mod:`~helpers.bayes.draws`: the posterior as arrays for the simulator (``FunnelDraws``, ``ChannelDraws``);
* :mod:`~helpers.bayes.cache`: the checksummed posterior cache (``load_idata``, ``load_posterior``);
* :mod:`~helpers.bayes.channels`: several channels with pooled slopes and carryover (notebook 06).

Carryover itself (the adstock weights, prior and effective spend) is :mod:`helpers.carryover`.
Importing this package is cheap and PyMC-free: PyMC, nutpie and ArviZ are imported inside the
functions that need them. Every name below is importable as ``helpers.bayes.<name>``.
"""

from helpers.bayes.cache import (CACHE_DIR, CACHE_FORMAT, MODEL_VERSION, ROOT, StaleCacheWarning, cache_key, cache_path,
                                 file_sha256, load_idata, load_posterior, read_cache, write_cache)
from helpers.bayes.channels import (CHANNEL_MODEL_VERSION, ChannelData, build_channel_model, channel_data, channel_fit_settings,
                                    channel_var_names, fit_channels, load_channel_idata, load_channel_posterior)
from helpers.bayes.draws import CHANNEL_PARAM_NAMES, PARAM_NAMES, ChannelDraws, FunnelDraws, to_channel_draws, to_funnel_draws
from helpers.bayes.fit import (DEFAULT_SAMPLER, SAMPLERS, ConvergenceError, ConvergenceWarning, FitSettings, add_natural_scale,
                               check_convergence, convergence_message, fit_funnel, higher_target_accept, natural_scale,
                               sample_model)
from helpers.bayes.model import (CENTRED_NAMES, OBSERVED_NAMES, OBSERVED_OF, POOLED_SLOPE_SHAPE, PRIORS, Priors, build_campaign_model,
                                 build_funnel_model, count_regression, funnel_predictors, least_squares_slopes, pooled_slopes)
from helpers.carryover import ADSTOCK_LAGS, adstock_lags, adstock_weights

__all__ = [
    "ADSTOCK_LAGS", "CACHE_DIR", "CACHE_FORMAT", "CENTRED_NAMES", "CHANNEL_MODEL_VERSION", "CHANNEL_PARAM_NAMES", "DEFAULT_SAMPLER",
    "MODEL_VERSION", "OBSERVED_NAMES", "OBSERVED_OF", "PARAM_NAMES", "POOLED_SLOPE_SHAPE", "PRIORS", "ROOT", "SAMPLERS",
    "ChannelData", "ChannelDraws", "ConvergenceError", "ConvergenceWarning", "FitSettings", "FunnelDraws", "Priors",
    "StaleCacheWarning", "add_natural_scale", "adstock_lags", "adstock_weights", "build_campaign_model", "build_channel_model",
    "build_funnel_model", "cache_key", "cache_path", "channel_data", "channel_fit_settings", "channel_var_names",
    "check_convergence", "convergence_message", "count_regression", "file_sha256", "fit_channels", "fit_funnel",
    "funnel_predictors", "higher_target_accept", "least_squares_slopes", "load_channel_idata", "load_channel_posterior", "load_idata", "load_posterior",
    "natural_scale", "pooled_slopes", "read_cache", "sample_model", "to_channel_draws", "to_funnel_draws", "write_cache",
]
