"""The posterior cache (``build/cache/*.nc``): a fit is run once, then read. A cache file is used
only when it matches its key (the data file's bytes, the model's version, the priors, the sampler's
settings) and its checksum; a stale or damaged one is refitted with a :class:`StaleCacheWarning`.
Files are written atomically (temporary file, then rename). :func:`load_idata` /
:func:`load_posterior` give the funnel's posterior (notebooks 02-05).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.bayes.draws import PARAM_NAMES, FunnelDraws, to_funnel_draws
from helpers.bayes.fit import FitSettings, _tree, fit_funnel
from helpers.bayes.model import CENTRED_NAMES, PRIORS, Priors

ROOT = Path(__file__).resolve().parents[2]
#: Every cache of the course lives under here (posteriors; helpers.training adds trained runs).
#: ``COURSE_CACHE_DIR`` moves it (benchmarks/bench_course.py times the course with empty caches).
CACHE_DIR = Path(os.environ.get("COURSE_CACHE_DIR") or ROOT / "build" / "cache")

#: Bump when the model's structure changes: every cache written under another key is stale.
MODEL_VERSION = "funnel-nb-centred/4-count-regression"
#: Bump when what the cache file holds, or how it is checksummed, changes.
CACHE_FORMAT = "3"  # 3: ArviZ 1 DataTree written by xarray (h5netcdf)


class StaleCacheWarning(UserWarning):
    """A posterior cache file was stale or damaged and is being refitted."""


def _read_daily(path: str | os.PathLike) -> pd.DataFrame:
    """The validated daily data (``helpers.data.load_daily``): date, spend, counts, holiday."""
    from helpers.data import load_daily

    return load_daily(path)


# --- the cache ------------------------------------------------------------------------


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_path(quick: bool = False, cache_dir: str | os.PathLike = CACHE_DIR, model: str = "funnel") -> Path:
    """``build/cache/<model>_posterior_full.nc`` or ``..._quick.nc``: quick and full never mix
    (``model``: ``"funnel"``, or e.g. ``"channels"`` / ``"channels_adstock"`` for notebook 06)."""
    return Path(cache_dir) / f"{model}_posterior_{'quick' if quick else 'full'}.nc"


def cache_key(data_path: str | os.PathLike, settings: FitSettings, priors: Priors = PRIORS, *,
              model_version: str | None = None, **options) -> dict[str, str]:
    """What a cache must match to be used: the data file's bytes, the model (version, default
    :data:`MODEL_VERSION`, and ``options``, e.g. ``adstock=True``), the priors, the settings."""
    key = {
        "cache_data_sha256": file_sha256(data_path),
        "cache_model_version": model_version or MODEL_VERSION,
        "cache_format": CACHE_FORMAT,
        "cache_priors": priors.to_json(),
        "cache_fit_settings": settings.to_json(),
    }
    key.update({f"cache_option_{k}": json.dumps(v, sort_keys=True) for k, v in sorted(options.items())})
    return key


_CHECKSUM_GROUPS = ("posterior", "observed_data", "constant_data")


def _content_sha256(idata) -> str:
    """Checksum of the posterior, the data and the centres (names, shapes, float64 bytes).

    Stored in the cache's attributes at write time and recomputed at read time, it catches
    damage that still parses as NetCDF (a flipped number, a truncated array).
    """
    h = hashlib.sha256()
    for group in _CHECKSUM_GROUPS:
        if group not in idata.children:
            continue
        ds = idata[group]
        for name in sorted(ds.data_vars):
            arr = np.ascontiguousarray(ds[name].to_numpy(), dtype=np.float64)
            h.update(f"{group}/{name}{arr.shape}".encode() + arr.tobytes())
    return h.hexdigest()


def write_cache(idata, path: str | os.PathLike, key: dict[str, str]) -> Path:
    """Save ``idata`` (posterior, sample_stats, observed/constant data) as NetCDF, atomically.

    The key and a checksum of the posterior go into ``posterior.attrs``. Written to a
    temporary file in the same folder, then ``os.replace``: a crash leaves the old file or
    nothing, never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    groups = [g for g in ("posterior", "sample_stats", "observed_data", "constant_data") if g in idata.children]
    out = _tree({g: idata[g].to_dataset().copy() for g in groups})
    out.posterior.attrs.update(key)
    out.posterior.attrs["cache_posterior_sha256"] = _content_sha256(out)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        out.to_netcdf(tmp, engine="h5netcdf")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_cache(path: str | os.PathLike, key: dict[str, str], required=(*PARAM_NAMES, *CENTRED_NAMES)):
    """``(idata, None)`` when ``path`` holds a sound cache matching ``key``; else ``(None, reason)``.

    ``required``: the posterior variables a sound cache holds (default: the funnel's).

    Reasons: ``"missing"``; ``"unreadable: ..."`` (garbage, truncated); ``"stale: <attr> changed"``
    (data, model, priors or settings differ); ``"corrupted: ..."`` (checksum or parameters).
    """
    import xarray as xr

    path = Path(path)
    if not path.exists():
        return None, "missing"
    try:
        # load everything into memory and close the file: a cache may be replaced while in use
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            idata = tree.load().copy()
        attrs = dict(idata.posterior.attrs)
    except Exception as e:  # any failure to read back is damage, whatever the library raises
        return None, f"unreadable: {type(e).__name__}: {str(e)[:200]}"
    for k, v in key.items():
        if attrs.get(k) != v:
            return None, f"stale: {k.removeprefix('cache_')} changed"
    missing = [k for k in required if k not in idata.posterior]
    if missing:
        return None, f"corrupted: posterior lacks {missing}"
    if attrs.get("cache_posterior_sha256") != _content_sha256(idata):
        return None, "corrupted: the checksum of the posterior and data does not match"
    return idata, None


def load_idata(
    quick: bool = False,
    *,
    data_path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike = CACHE_DIR,
    settings: FitSettings | None = None,
    priors: Priors = PRIORS,
    refit: bool = False,
    progressbar: bool | None = None,
    strict: bool = True,
):
    """The funnel's full ArviZ ``DataTree``, from the cache when sound, else fitted and cached.

    ``quick`` picks the quick or full cache file and the default settings
    (:meth:`FitSettings.quick` / :meth:`FitSettings.full`). A stale or damaged cache is
    never used: it is refitted, with a :class:`StaleCacheWarning` saying why. ``strict``: see
    :func:`fit_funnel` (a fit that fails its checks is never cached).
    """
    from helpers.data import DATA_PATH

    data_path = Path(data_path or DATA_PATH)
    settings = settings or (FitSettings.quick() if quick else FitSettings.full())
    return _cached_fit(cache_path(quick, cache_dir), cache_key(data_path, settings, priors),
                       lambda: fit_funnel(_read_daily(data_path), settings, priors=priors, progressbar=progressbar, strict=strict),
                       refit=refit)


def _cached_fit(path: Path, key: dict[str, str], fit, *, required=(*PARAM_NAMES, *CENTRED_NAMES), refit: bool = False):
    """The ``DataTree`` cached at ``path`` when sound and matching ``key``; else ``fit()``, cached.

    A stale or damaged cache is never used: it is refitted, with a :class:`StaleCacheWarning`
    saying why. A fit that failed its convergence checks (``posterior.attrs["converged"] == 0``,
    possible with ``strict=False``) is returned but not cached. Shared by every cached posterior.
    """
    if not refit:
        idata, reason = read_cache(path, key, required)
        if idata is not None:
            return idata
        if reason != "missing":
            warnings.warn(f"{path}: {reason}; refitting", StaleCacheWarning, stacklevel=3)
    idata = fit()
    if idata.posterior.attrs.get("converged", 1):
        write_cache(idata, path, key)
    return idata


def load_posterior(quick: bool = False, **kwargs) -> FunnelDraws:
    """The cached posterior draws for the simulator (fits and caches when missing or stale).

    ``kwargs`` go to :func:`load_idata` (``data_path``, ``cache_dir``, ``settings``, ...).
    """
    return to_funnel_draws(load_idata(quick, **kwargs))
