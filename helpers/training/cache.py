"""Cached training runs and the fingerprints that key them (``build/cache/training/``; notebooks 05, 06).

Every cache file is written atomically (JSON through :func:`helpers.data.atomic_write_text`,
agents through ``PPO.save``) and carries a **key** (:func:`run_key`): the PPO and environment
configs, the step budget, the calendar of the months (:func:`calendar_fingerprint`), the
evaluation (months, their calendar, seed, the evaluator's draws and config), a fingerprint of
the posterior draws (:func:`draws_fingerprint`) and of the code that produced it
(:func:`code_fingerprint`: this package and every ``helpers`` module it imports, ``data``,
``bayes`` and ``carryover`` included). When read back it is used only if the key matches and
its checksums hold; otherwise (missing, half-written, garbage, stale) it is rebuilt, with a
:class:`StaleTrainingCacheWarning` saying why (except when simply missing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from helpers import bayes, data
from helpers.baselines import EVAL_SEED, Evaluator
from helpers.bayes import CHANNEL_PARAM_NAMES, PARAM_NAMES, ChannelDraws, FunnelDraws
from helpers.env import EVAL_MONTHS, EnvConfig, month_calendar
from helpers.ppo import PPO, PPOConfig
from helpers.training.config import BUDGET_PPO, EVAL_EVERY, N_EVAL_MONTHS, NUM_ENVS, validation_evaluator
from helpers.training.run import CURVE_COLUMNS, TrainingRun, train_budget_agent

ROOT = Path(__file__).resolve().parent.parent.parent
CACHE_DIR = bayes.CACHE_DIR / "training"
#: Bump to invalidate every training cache (format change).
CACHE_VERSION = 1

class StaleTrainingCacheWarning(UserWarning):
    """A training cache was stale or damaged and is being recomputed."""


def draws_fingerprint(draws: FunnelDraws | ChannelDraws) -> str:
    """SHA-256 of the posterior draws (parameter names and float64 values; channels: their names too)."""
    if isinstance(draws, ChannelDraws):
        h = hashlib.sha256(",".join((*draws.channels, "|", *CHANNEL_PARAM_NAMES)).encode())
        for k in CHANNEL_PARAM_NAMES:
            h.update(np.ascontiguousarray(getattr(draws, k), dtype=np.float64).tobytes())
        return h.hexdigest()
    h = hashlib.sha256(",".join(PARAM_NAMES).encode())
    h.update(np.ascontiguousarray(draws.as_matrix(), dtype=np.float64).tobytes())
    return h.hexdigest()


#: ``helpers`` modules that only draw (a function may import them to plot): never part of a result.
_DRAWING_ONLY = ("plots", "widgets")


def code_files() -> list[Path]:
    """The sources that decide a training result: this package's files and every ``helpers`` module
    they import, directly or not (read from the import statements: ``data``, ``bayes``,
    ``carryover``, ``env``, ``baselines``, ``ppo`` and what they import; a package counts with all
    its files), the drawing modules aside."""
    import ast

    here = Path(__file__).resolve().parent.parent  # helpers/
    seen: dict[str, Path] = {}
    todo = sorted(Path(__file__).resolve().parent.glob("*.py"))
    while todo:
        path = todo.pop()
        if str(path) in seen:
            continue
        seen[str(path)] = path
        for node in ast.walk(ast.parse(path.read_bytes())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] != "helpers" or len(parts) < 2 or parts[1] in _DRAWING_ONLY:
                    continue
                module = here.joinpath(*parts[1:])
                if module.with_suffix(".py").is_file():
                    todo.append(module.with_suffix(".py"))
                elif module.is_dir():
                    todo.extend(sorted(module.rglob("*.py")))
    return sorted(seen.values(), key=lambda p: p.relative_to(here).as_posix())


def code_fingerprint() -> str:
    """SHA-256 of the sources that decide a training result (:func:`code_files`)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent.parent
    for path in code_files():
        h.update(path.relative_to(here).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def calendar_fingerprint(months: Sequence[str]) -> str:
    """SHA-256 of the calendar of ``months`` as the env reads it (holiday and weekend flags, days),
    so that a change of the holiday data (``helpers.data.holiday_flags``) is a change of key."""
    cal = month_calendar(tuple(months))
    h = hashlib.sha256(json.dumps(list(cal.months)).encode())
    for arr in (cal.n_days, cal.holiday, cal.weekend):
        h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return h.hexdigest()


def _jsonable(obj: Any) -> Any:
    """Plain JSON types (tuples -> lists, numpy scalars -> Python) so keys compare after a round trip."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def env_config_dict(env_config: EnvConfig | None) -> dict[str, Any]:
    """The resolved environment config (budget, scales from the data) as plain JSON types."""
    return _jsonable(dataclasses.asdict((env_config or EnvConfig()).resolved()))


def _checksum(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, allow_nan=True).encode()).hexdigest()


def write_json_cache(path: str | Path, key: Mapping[str, Any], payload: Any) -> Path:
    """Write ``{"key", "payload", "checksum"}`` to ``path`` atomically."""
    doc = {"key": _jsonable(dict(key)), "payload": _jsonable(payload)}
    doc["checksum"] = _checksum([doc["key"], doc["payload"]])
    data.atomic_write_text(path, json.dumps(doc, sort_keys=True))
    return Path(path)


def read_json_cache(path: str | Path, key: Mapping[str, Any]) -> tuple[Any, str | None]:
    """``(payload, None)`` if ``path`` is a sound cache for ``key``, else ``(None, reason)``.

    Reasons: ``missing``, ``unreadable: ...`` (half-written, not JSON), ``stale: <field>
    changed``, ``corrupted: checksum``.
    """
    path = Path(path)
    if not path.exists():
        return None, "missing"
    try:
        doc = json.loads(path.read_text())
        stored_key, payload, checksum = doc["key"], doc["payload"], doc["checksum"]
    except Exception as e:  # truncated, garbage, wrong shape: all mean "do not trust"
        return None, f"unreadable: {type(e).__name__}: {str(e)[:120]}"
    want = _jsonable(dict(key))
    if not isinstance(stored_key, dict):
        return None, "unreadable: key is not a mapping"
    for k in sorted(set(want) | set(stored_key)):
        if stored_key.get(k) != want.get(k):
            return None, f"stale: {k} changed"
    if checksum != _checksum([stored_key, payload]):
        return None, "corrupted: checksum does not match"
    return payload, None


def _warn_rebuild(path: Path, reason: str) -> None:
    if reason != "missing":
        warnings.warn(f"{path}: {reason}; recomputing", StaleTrainingCacheWarning, stacklevel=3)


def _eval_key(evaluator: Evaluator) -> dict[str, Any]:
    """The part of a cache key that says where a run was measured: months, seed, posterior draws, config."""
    return {"n_eval_months": evaluator.n_months, "eval_seed": int(evaluator.seed), "eval_months": tuple(evaluator.calendar.months),
            "eval_draws_sha256": draws_fingerprint(evaluator.draws), "eval_config": env_config_dict(evaluator.config)}


def run_key(draws: FunnelDraws, total_steps: int, config: PPOConfig, env_config: EnvConfig | None, *, num_envs: int,
            eval_every: int, n_eval_months: int, eval_seed: int = EVAL_SEED, eval_months: Sequence[str] = EVAL_MONTHS,
            eval_draws_sha256: str | None = None, eval_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything a cached training run must match: its inputs (the draws, the configs, the
    calendar of its months, the code) and where it was measured (months and their calendar, seed,
    the evaluator's draws, default the training draws, and config). ``**_eval_key(evaluator)``
    fills the evaluation part from an evaluator."""
    env_dict = env_config_dict(env_config)
    draws_sha = draws_fingerprint(draws)
    return {
        "kind": "budget-ppo-run",
        "cache_version": CACHE_VERSION,
        "total_steps": int(total_steps),
        "num_envs": int(num_envs),
        "ppo_config": config.to_dict(),
        "env_config": env_dict,
        "calendar_sha256": calendar_fingerprint(env_dict["months"]),
        "eval": {"every": int(eval_every), "n_months": int(n_eval_months), "seed": int(eval_seed), "months": list(eval_months),
                 "calendar_sha256": calendar_fingerprint(eval_months), "draws_sha256": eval_draws_sha256 or draws_sha,
                 "config": None if eval_config is None else dict(eval_config)},
        "draws_sha256": draws_sha,
        "code_sha256": code_fingerprint(),
    }


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_run(run: TrainingRun, directory: str | Path, key: Mapping[str, Any]) -> Path:
    """Save a run as ``directory/agent.pt`` (``PPO.save``) and ``directory/run.json`` (key,
    history, curve, timings, the agent file's SHA-256). The manifest is written last: a crash
    in between leaves a manifest whose checksum no longer matches the agent file."""
    directory = Path(directory)
    run.agent.save(directory / "agent.pt")  # atomic (temporary file, then os.replace)
    payload = {
        "agent_sha256": _file_sha256(directory / "agent.pt"),
        "history": run.history.to_dict(orient="list"),
        "curve": run.curve.to_dict(orient="list"),
        "wall_s": run.wall_s,
        "eval_s": run.eval_s,
        "meta": run.meta,
    }
    return write_json_cache(directory / "run.json", key, payload)


def load_run(directory: str | Path, key: Mapping[str, Any], envs=None) -> tuple[TrainingRun | None, str | None]:
    """``(run, None)`` if ``directory`` holds a sound run for ``key``, else ``(None, reason)``."""
    directory = Path(directory)
    payload, reason = read_json_cache(directory / "run.json", key)
    if payload is None:
        return None, reason
    agent_path = directory / "agent.pt"
    if not agent_path.exists():
        return None, "corrupted: agent.pt missing"
    if _file_sha256(agent_path) != payload.get("agent_sha256"):
        return None, "corrupted: agent.pt does not match its manifest"
    try:
        agent = PPO.load(agent_path, envs=envs)
        history = pd.DataFrame(payload["history"])
        curve = pd.DataFrame(payload["curve"])[CURVE_COLUMNS]
        wall_s, eval_s = float(payload["wall_s"]), float(payload["eval_s"])
    except Exception as e:
        return None, f"unreadable: {type(e).__name__}: {str(e)[:120]}"
    if curve.empty or not np.all(np.isfinite(curve["pct_of_optimum"].to_numpy(dtype=float))):
        return None, "corrupted: empty or non-finite curve"
    return TrainingRun(agent, history, curve, wall_s, eval_s, from_cache=True, meta=payload.get("meta", {})), None


def cached_training_run(
    name: str,
    draws: FunnelDraws,
    total_steps: int,
    config: PPOConfig | None = None,
    env_config: EnvConfig | None = None,
    *,
    num_envs: int = NUM_ENVS,
    eval_every: int = EVAL_EVERY,
    n_eval_months: int = N_EVAL_MONTHS,
    evaluator: Evaluator | None = None,
    cache_dir: str | Path = CACHE_DIR,
    refit: bool = False,
    callback: Callable[[dict], bool | None] | None = None,
    progress: bool = False,
) -> TrainingRun:
    """:func:`train_budget_agent`, cached under ``cache_dir/name/`` (see :func:`save_run`).

    A cached run is returned (``from_cache=True``, its agent loaded without an env) only when
    its key (:func:`run_key`) matches and its files are intact; otherwise it is trained
    and saved. ``callback`` (e.g. a live plot) only runs when training happens.
    """
    config = config or BUDGET_PPO
    directory = Path(cache_dir) / name
    evaluator = evaluator or validation_evaluator(draws, env_config, n_eval_months)
    key = run_key(draws, total_steps, config, env_config, num_envs=num_envs, eval_every=eval_every, **_eval_key(evaluator))
    if not refit:
        run, reason = load_run(directory, key)
        if run is not None:
            return run
        _warn_rebuild(directory, reason)
    if evaluator.draws is not draws and draws_fingerprint(evaluator.draws) != key["draws_sha256"]:
        raise ValueError("the evaluator was built on other posterior draws than the ones trained on")
    run = train_budget_agent(draws, total_steps, config, env_config, num_envs=num_envs, evaluator=evaluator,
                             eval_every=eval_every, callback=callback, progress=progress)
    save_run(run, directory, key)
    return run
