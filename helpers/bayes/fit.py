"""Fitting a model and checking the fit (notebook 02): NUTS with nutpie or PyMC's own
(:class:`FitSettings`, :func:`sample_model`), the convergence checks (r_hat, bulk ESS,
divergences; :func:`check_convergence`, a clear message saying what to try), and the funnel's fit
on the natural scale (:func:`fit_funnel`). PyMC, nutpie and ArviZ are imported inside. nutpie's
model is compiled with lean Numba callbacks (:func:`compile_nutpie`): same numbers, less to compile.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from helpers.bayes.model import CENTRED_NAMES, OBSERVED_NAMES, PRIORS, Priors, build_funnel_model, funnel_predictors
from helpers.bayes.draws import PARAM_NAMES

#: The course's default sampler, chosen by measurement (``benchmarks/bench_bayes.py``, figures in
#: build/bench/bench_bayes.json): the lower median *cold* wall time (fresh process, empty PyTensor
#: and Numba caches, 2 cores, 4 chains x 2,000 steps) on PyMC 6.4 / nutpie 0.16.11, 3 processes
#: each on a quiet machine (load ~1): nutpie with the lean callbacks (:func:`compile_nutpie`)
#: 9.3 s [9.0-9.3] vs PyMC's NUTS on PyTensor's Numba backend 11.7 s [11.4-12.0] (0.80x) and
#: nutpie's own callbacks 11.2 s [10.9-11.2]; with warm disk caches 5.4 s [5.2-5.4] vs 7.6 s
#: [7.4-7.7] and 7.2 s [6.8-7.4]. An earlier run put PyMC's C backend at 57.8 s cold. Sampling
#: alone is ~3 s; the rest is compiling (see compile_nutpie). Under load (4+ busy processes on the
#: 2 cores) every figure doubles or more. PyMC's own NUTS stays an option (``sampler="pymc"``,
#: ``pymc_backend="numba"`` or ``"c"``).
DEFAULT_SAMPLER = "nutpie"
SAMPLERS = ("nutpie", "pymc")


class ConvergenceError(RuntimeError):
    """The sampler's draws fail the convergence checks (r_hat, bulk ESS, divergences)."""


class ConvergenceWarning(UserWarning):
    """The draws fail the convergence checks, and ``strict=False`` lets the run go on with them."""


@dataclass(frozen=True)
class FitSettings:
    """How to sample: sampler, chains, tuning and kept draws per chain, seed, and the checks.

    ``full()`` is the course's setting; ``quick()`` (``COURSE_QUICK=1``) halves tuning and
    draws and relaxes the ESS floor from 400 to 200 (r_hat stays <= 1.01).
    """

    sampler: str = DEFAULT_SAMPLER  # "nutpie" or "pymc" (PyMC's own NUTS)
    # nutpie only: "numba" (default; vs "jax": compiles ~10x slower, samples ~5x faster) or "jax"
    # (needs the optional jax package; see benchmarks/bench_bayes.py for the trade-off)
    nutpie_backend: str = "numba"
    # PyMC's own NUTS only: PyTensor's backend, "numba" (PyMC 6's default) or "c" (PyMC 5's)
    pymc_backend: str = "numba"
    chains: int = 4
    tune: int = 1000
    draws: int = 1000
    seed: int = 20180923
    target_accept: float = 0.8
    max_rhat: float = 1.01
    min_ess_bulk: int = 400
    max_divergences: int = 0

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"FitSettings.sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.nutpie_backend not in ("numba", "jax"):
            raise ValueError(f"FitSettings.nutpie_backend must be 'numba' or 'jax', got {self.nutpie_backend!r}")
        if self.pymc_backend not in ("numba", "c"):
            raise ValueError(f"FitSettings.pymc_backend must be 'numba' or 'c', got {self.pymc_backend!r}")
        if self.chains < 2:
            raise ValueError("FitSettings.chains must be >= 2: r_hat needs several chains")

    @classmethod
    def full(cls, **overrides) -> "FitSettings":
        return cls(**overrides)

    @classmethod
    def quick(cls, **overrides) -> "FitSettings":
        return cls(**{"tune": 500, "draws": 500, "min_ess_bulk": 200, **overrides})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _progress_default(progressbar: bool | None) -> bool:
    """Progress bars on unless ``TQDM_DISABLE`` is set (quick mode / headless runs)."""
    if progressbar is not None:
        return progressbar
    return os.environ.get("TQDM_DISABLE", "") in ("", "0")


# --- sampling and checks --------------------------------------------------------------


def sample_model(model, settings: FitSettings = FitSettings(), *, progressbar: bool | None = None):
    """Sample ``model`` with NUTS (nutpie or PyMC's own) and return an ArviZ ``DataTree``.

    Only the model's free variables and deterministics are kept (no unconstrained copies, no
    warm-up); the tree
    has the groups ``posterior`` and ``sample_stats``. Timings go into ``posterior.attrs``:
    ``compile_s`` (graph compilation; for PyMC everything before the first draw),
    ``sampling_s`` (tuning + draws) and ``fit_wall_s``.
    """
    import pymc as pm

    progress = _progress_default(progressbar)
    keep = [rv.name for rv in model.free_RVs + model.deterministics]
    t0 = time.perf_counter()
    if settings.sampler == "nutpie":
        import nutpie

        backend = settings.nutpie_backend
        gradient_backend = "jax" if backend == "jax" else "pytensor"
        compiled = compile_nutpie(model, backend=backend, gradient_backend=gradient_backend, var_names=keep)
        t1 = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            seed=settings.seed,
            target_accept=settings.target_accept,
            save_warmup=False,
            progress_bar=progress,
        )
        sampling_s = time.perf_counter() - t1
        compile_s = t1 - t0
    else:
        idata = pm.sample(
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=min(settings.chains, os.cpu_count() or 1),
            # Trap: the default start method on Linux is fork(). Forking a process in which
            # torch or BLAS already started their OpenMP threads copies locks held by threads
            # that do not exist in the child, which then waits forever. "spawn" starts clean
            # interpreters (and is what macOS and Windows use anyway).
            mp_ctx="spawn",
            backend=settings.pymc_backend,
            random_seed=settings.seed,
            target_accept=settings.target_accept,
            progressbar=progress,
            compute_convergence_checks=False,  # we run our own, stricter ones
            var_names=keep,
            model=model,
        )
        sampling_s = float(idata.posterior.attrs.get("sampling_time", np.nan))
        compile_s = time.perf_counter() - t0 - sampling_s
    wall = time.perf_counter() - t0
    # keep only what NetCDF can store and what we need
    idata = _tree({g: idata[g].to_dataset() for g in ("posterior", "sample_stats") if g in idata.children})
    idata.posterior.attrs.update(
        {"sampler": settings.sampler, "compile_s": float(compile_s), "sampling_s": float(sampling_s), "fit_wall_s": float(wall)}
    )
    return idata


# --- nutpie's model, compiled lean ---------------------------------------------------------

#: nutpie versions whose two Numba callbacks :func:`compile_nutpie` replaces by lean ones
#: (tests/test_bayes.py checks that they compute what nutpie's own do); other versions keep theirs.
LEAN_CALLBACK_NUTPIE_VERSIONS = ("0.16.",)
#: Off: nutpie's own callbacks (benchmarks/bench_bayes.py measures both).
LEAN_NUTPIE_CALLBACKS = True
_PATCH_LOCK = threading.Lock()


def compile_nutpie(model, **kwargs):
    """``nutpie.compile_pymc_model(model, **kwargs)`` with lean Numba callbacks (numba backend).

    nutpie wraps PyTensor's log-density-and-gradient function (and the function that maps a draw
    to the traced variables) in a Numba C callback, compiled anew in every process: PyTensor's own
    functions are read from its disk cache in a warm process, the callbacks never are (they close
    over per-process objects; numba's ``cache=True`` writes entries no later process matches).
    nutpie's callbacks copy the result with ``out[...] = grad`` and check it with
    ``np.all(np.isfinite(out))``: for these, Numba also compiles the code that *formats the error
    message* of a shape mismatch (f-strings, ``str`` of integers: ~40 more functions). On the
    funnel (benchmarks/bench_bayes.py, ``nutpie`` vs ``nutpie_stock``, median of 3 on a quiet
    machine) that saves 1.6 s of compiling in a warm process (2.2 s instead of 3.8 s; fit 5.4 s
    instead of 7.2 s) and 1.7 s in a cold one (6.3 s instead of 8.0 s; fit 9.3 s instead of 11.2 s).
    The lean callbacks copy and check element by element: the same values and return codes, about
    6 functions to compile. The model, the gradient and the draws do not change
    (tests/test_bayes.py compares both, bit for bit). Upstream, nutpie could do the same.
    """
    import nutpie

    if kwargs.get("backend", "numba") != "numba" or not (LEAN_NUTPIE_CALLBACKS and lean_callbacks_supported()):
        return nutpie.compile_pymc_model(model, **kwargs)
    import nutpie.compile_pymc as cp

    with _PATCH_LOCK:
        saved = cp._make_c_logp_func, cp._make_c_expand_func
        cp._make_c_logp_func, cp._make_c_expand_func = _lean_logp_callback, _lean_expand_callback
        try:
            return nutpie.compile_pymc_model(model, **kwargs)
        finally:
            cp._make_c_logp_func, cp._make_c_expand_func = saved


def lean_callbacks_supported() -> bool:
    """Whether the installed nutpie is one whose callbacks :func:`compile_nutpie` knows how to replace."""
    import nutpie
    import nutpie.compile_pymc as cp

    names = ("_make_c_logp_func", "_make_c_expand_func", "make_extraction_fn")
    return nutpie.__version__.startswith(LEAN_CALLBACK_NUTPIE_VERSIONS) and all(hasattr(cp, n) for n in names)


def _lean_logp_callback(n_dim, logp_fn, user_data, shared_keys, shared_data):
    """nutpie's ``_make_c_logp_func`` (0.16), copying the gradient element by element.

    Return codes as nutpie's: 0 ok, -1 wrong dimension, 1 error, 3 non-finite gradient,
    4 non-finite log density."""
    import numba
    from nutpie.compile_pymc import make_extraction_fn

    extract = make_extraction_fn(logp_fn, shared_data, shared_keys, user_data.dtype)
    t = numba.types
    c_sig = t.int64(t.uint64, t.CPointer(t.double), t.CPointer(t.double), t.CPointer(t.double), t.voidptr)

    def logp_numba(dim, x_, out_, logp_, user_data_):
        if dim != n_dim:
            return -1
        try:
            x = numba.carray(x_, (n_dim,))
            out = numba.carray(out_, (n_dim,))
            logp = numba.carray(logp_, ())
            logp_val, grad = extract(x, user_data_)
            if grad.size != n_dim:
                return 1
            logp[()] = logp_val
            finite = True
            for i in range(n_dim):
                out[i] = grad[i]
                finite = finite and np.isfinite(grad[i])
            if not finite:
                return 3
            if not np.isfinite(logp_val):
                return 4
        except Exception:  # noqa: BLE001
            return 1
        return 0

    return logp_numba, c_sig


def _lean_expand_callback(n_dim, n_expanded, expand_fn, user_data, shared_var_keys, shared_data):
    """nutpie's ``_make_c_expand_func`` (0.16), copying the traced values element by element.

    Return codes as nutpie's: 0 ok, -1 wrong dimensions, -2 error."""
    import numba
    from nutpie.compile_pymc import make_extraction_fn

    extract = make_extraction_fn(expand_fn, shared_data, shared_var_keys, user_data.dtype)
    t = numba.types
    c_sig = t.int64(t.uint64, t.uint64, t.CPointer(t.double), t.CPointer(t.double), t.voidptr)

    def expand_numba(dim, expanded, x_, out_, user_data_):
        if dim != n_dim or expanded != n_expanded:
            return -1
        try:
            x = numba.carray(x_, (n_dim,))
            out = numba.carray(out_, (n_expanded,))
            (values,) = extract(x, user_data_)
            if values.size != n_expanded:
                return -2
            for i in range(n_expanded):
                out[i] = values[i]
        except Exception:  # noqa: BLE001
            return -2
        return 0

    return expand_numba, c_sig


def _tree(groups: dict):
    """An ArviZ ``DataTree`` with one child group per ``{name: xarray.Dataset}`` entry.

    ArviZ 1 stores inference results in xarray's ``DataTree`` (ArviZ 0.x had ``InferenceData``):
    ``tree.posterior`` is a group, ``list(tree.children)`` its group names.
    """
    import xarray as xr

    return xr.DataTree.from_dict({g: ds for g, ds in groups.items()})


def check_convergence(
    idata,
    var_names=None,
    *,
    max_rhat: float = 1.01,
    min_ess_bulk: float = 400,
    max_divergences: int = 0,
    strict: bool = True,
    target_accept: float = 0.8,
) -> pd.DataFrame:
    """Check convergence with ArviZ; return the diagnostics table (one row per scalar).

    A fit fails when any ``r_hat > max_rhat``, any bulk ESS ``< min_ess_bulk``, or there are
    more than ``max_divergences`` divergent transitions. ``strict=True`` (tests, CI, scripts)
    raises :class:`ConvergenceError`; ``strict=False`` (a learner's notebook) warns with a
    :class:`ConvergenceWarning` and returns, so the notebook goes on. Both carry the same message
    (:func:`convergence_message`): what failed, what it means, what to try. The table's
    ``attrs["converged"]`` says whether the checks passed.
    """
    import arviz as az

    # round_to="none": summary() rounds for display by default, and a rounded 1.012 reads 1.01
    diag = az.summary(idata, var_names=var_names, kind="diagnostics", round_to="none")
    problems = []
    bad = diag[~(diag["r_hat"] <= max_rhat)]
    if len(bad):
        problems.append(f"r_hat > {max_rhat}: " + ", ".join(f"{k}={v:.3f}" for k, v in bad["r_hat"].items()))
    bad = diag[~(diag["ess_bulk"] >= min_ess_bulk)]
    if len(bad):
        problems.append(f"bulk ESS < {min_ess_bulk}: " + ", ".join(f"{k}={v:.0f}" for k, v in bad["ess_bulk"].items()))
    n_div = 0
    if "sample_stats" in idata.children and "diverging" in idata.sample_stats:
        n_div = int(idata.sample_stats["diverging"].sum())
        if n_div > max_divergences:
            problems.append(f"{n_div} divergent transitions (allowed {max_divergences})")
    diag.attrs["converged"] = not problems
    if problems:
        message = convergence_message(problems, divergences=n_div > max_divergences, strict=strict, target_accept=target_accept)
        if strict:
            raise ConvergenceError(message)
        warnings.warn(message, ConvergenceWarning, stacklevel=2)
    return diag


def convergence_message(problems: list[str], *, divergences: bool, strict: bool, target_accept: float = 0.8,
                        where: str = "FIT in the notebook's parameters cell") -> str:
    """The message of a failed convergence check: what failed, what it means, what to try (in
    ``where``: the settings the reader can change; a target_accept above the one that failed)."""
    lines = ["the sampler did not converge: " + "; ".join(problems) + "."]
    if divergences:
        lines.append("What it means: at those steps the sampler's simulated trajectory blew up, because the posterior curves "
                     "too sharply there for its step size; the draws may miss that part of the posterior, so estimates from "
                     "them can be off.")
        higher = higher_target_accept(target_accept)
        todo = f"a higher target_accept (e.g. {higher:g}: smaller steps), more tuning (tune=2000), or another seed (seed=1)"
    else:
        lines.append("What it means: the chains disagree (r_hat) or hold too few independent draws (bulk ESS), so summaries "
                     "of the posterior are not yet reliable.")
        todo = "more draws (draws=2000), more tuning (tune=2000), or another seed (seed=1)"
    lines.append(f"What to try, in the fit's settings ({where}), then run it again: {todo}.")
    if not strict:
        lines.append("Going on with these draws: they are not cached, so the next run fits again. "
                     "(Tests and CI set COURSE_STRICT=1 and stop here.)")
    return "\n".join(lines)


def higher_target_accept(target_accept: float) -> float:
    """The target_accept to suggest after divergences at ``target_accept``: 0.95, or 0.99 from 0.95 on."""
    return 0.99 if target_accept >= 0.95 else 0.95


def natural_scale(centred, log_spend_centre: float, log_imp_centre: float) -> dict:
    """The natural-scale parameters from centred ones (floats, arrays or xarray alike).

    ``log mu = a_c + b * (log x - centre) + ...  =  (a_c - b * centre) + b * log x + ...``, so
    ``intercept = intercept_c - slope * centre``; and ``alpha = 1 / cv**2``.
    """
    c = centred
    return {
        "imp_intercept": c["imp_intercept_c"] - c["imp_slope"] * log_spend_centre,
        "clk_intercept": c["clk_intercept_c"] - c["clk_slope"] * log_imp_centre,
        "imp_alpha": 1.0 / c["imp_cv"] ** 2,
        "clk_alpha": 1.0 / c["clk_cv"] ** 2,
    }


def add_natural_scale(idata) -> None:
    """Add the :data:`PARAM_NAMES` (natural, uncentred scale) to ``idata.posterior`` in place.

    The centres are read from ``idata.constant_data`` (``log_spend_centre``, ``log_imp_centre``);
    see :func:`natural_scale`.
    """
    const = idata.constant_data
    extra = natural_scale(idata.posterior, float(const["log_spend_centre"]), float(const["log_imp_centre"]))
    for name, value in extra.items():
        idata.posterior[name] = value


def _data_groups(df: pd.DataFrame) -> dict:
    """``observed_data`` and ``constant_data`` groups for the funnel's ``DataTree``."""
    import xarray as xr

    x = funnel_predictors(df)
    day = pd.DatetimeIndex(df["date"]) if "date" in df else np.arange(len(df))
    observed = xr.Dataset({k: ("day", df[k].to_numpy()) for k in OBSERVED_NAMES}, coords={"day": day})
    constant = xr.Dataset(
        {
            "spend": ("day", df["spend"].to_numpy(dtype=float)),
            "holiday": ("day", df["holiday"].to_numpy(dtype=np.int64)),
            "weekend": ("day", x["weekend"].astype(np.int64)),
            "log_spend_centre": x["log_spend_centre"],
            "log_imp_centre": x["log_imp_centre"],
        },
        coords={"day": day},
    )
    return {"observed_data": observed, "constant_data": constant}


def fit_funnel(df: pd.DataFrame, settings: FitSettings = FitSettings(), *, priors: Priors = PRIORS, progressbar: bool | None = None,
               strict: bool = True):
    """Build, sample and check the funnel model; return its ArviZ ``DataTree``.

    The posterior holds the sampler's :data:`CENTRED_NAMES` plus the natural-scale
    :data:`PARAM_NAMES`; ``observed_data``/``constant_data`` hold the data and the centres.
    When the checks of ``settings`` fail: raises :class:`ConvergenceError`, or with
    ``strict=False`` warns (:func:`check_convergence`) and returns the draws, marked
    ``posterior.attrs["converged"] = 0``.
    """
    t0 = time.perf_counter()
    model = build_funnel_model(df, priors=priors)
    build_s = time.perf_counter() - t0
    idata = sample_model(model, settings, progressbar=progressbar)
    idata = _tree({**{g: idata[g].to_dataset() for g in idata.children}, **_data_groups(df)})
    add_natural_scale(idata)
    diag = check_convergence(
        idata,
        var_names=list(CENTRED_NAMES) + list(PARAM_NAMES),
        max_rhat=settings.max_rhat,
        min_ess_bulk=settings.min_ess_bulk,
        max_divergences=settings.max_divergences,
        target_accept=settings.target_accept,
        strict=strict,
    )
    idata.posterior.attrs["converged"] = int(diag.attrs["converged"])
    idata.posterior.attrs["build_s"] = float(build_s)
    idata.posterior.attrs["fit_wall_s"] = float(time.perf_counter() - t0)
    return idata
