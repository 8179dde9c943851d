"""The pre-flight check for a workshop attendee: ``make check``, or ``python -m helpers.check``.

In order: the interpreter (``requires-python`` of pyproject.toml), the installed versions (every
package the course needs on this platform, as pinned in uv.lock), the course's Jupyter kernel, a
C compiler for PyTensor, writable cache folders (``build/cache``, PyTensor's compiledir), then a
tiny real fit (the funnel model with nutpie, 2 short chains; nothing is written to the course's
posterior cache) and, beside it in a second process, one PPO update on the budget env. One line
per step as it goes; the last line is ``Environment OK · <OS> · Python · PyMC · nutpie · torch · <seconds>``
(exit code 0), or the output ends with one ``Problem: <what>. Fix: <what to do>`` line per problem
(exit code 1), never a traceback. The fit and the PPO update run only once the quick checks pass.

Each check is a small function taking its inputs as arguments (a lock, installed versions, kernel
specs, folders...) and returning ``(summary, problems)``, so the tests can feed it doctored ones;
``--lock PATH`` points the command at another lock file. Sits on top of the helpers (it imports
bayes, data, env and training, lazily: a too-old Python still gets its one-line answer).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "uv.lock"
PYPROJECT = ROOT / "pyproject.toml"
#: The kernel the notebooks ask for (their metadata) and the name `make env` registers it under.
KERNEL_NAME, KERNEL_DISPLAY = "python3", "Python 3 (course)"
#: The tiny fit: 2 chains x (100 tune + 100 draws); checks relaxed to what 200 draws can show.
FIT = dict(chains=2, tune=100, draws=100, max_rhat=1.1, min_ess_bulk=20, max_divergences=5)
#: The PPO update: 16 months x 8 days = 128 transitions, 2 epochs of 2 minibatches.
PPO_ENVS, PPO = 16, dict(num_steps=8, num_epochs=2, num_minibatches=2)

#: What to do, for both of README's routes (make, and plain uv without make).
RESYNC = "run `make env` (without make: `uv sync --locked`), which installs exactly the versions in uv.lock"
KERNEL_FIX = (f"run `make env`, which registers it; without make: `{sys.executable} -m ipykernel install --sys-prefix "
              f'--name {KERNEL_NAME} --display-name "{KERNEL_DISPLAY}"`')
COMPILER_FIX = {
    "linux": "install g++ (Debian/Ubuntu: `sudo apt-get install g++`; Fedora: `sudo dnf install gcc-c++`)",
    "darwin": "install Apple's command-line tools: `xcode-select --install`",
    "win32": "use the conda route of README.md and `conda install -c conda-forge m2w64-toolchain`",
}


@dataclass(frozen=True)
class Problem:
    """Something wrong, and what to do about it; ``fatal=False`` is a warning (exit code stays 0)."""

    what: str
    fix: str
    fatal: bool = True

    def __str__(self) -> str:
        return f"{'Problem' if self.fatal else 'Warning'}: {self.what}. Fix: {self.fix}"


# --- the quick checks ---------------------------------------------------------------------------


def requires_python(pyproject: Path = PYPROJECT) -> str:
    """``requires-python`` of pyproject.toml (read with a regex: tomllib needs Python 3.11)."""
    found = re.search(r'^requires-python\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.M)
    if not found:
        raise ValueError(f"{pyproject}: no requires-python line")
    return found.group(1)


def check_python(version: tuple = tuple(sys.version_info[:3]), requires: str | None = None):
    """The interpreter against ``requires`` (only the ``>=X.Y`` form the course uses)."""
    requires = requires or requires_python()
    found = re.fullmatch(r">=\s*(\d+)\.(\d+)", requires.strip())
    if not found:
        raise ValueError(f"pyproject.toml: requires-python {requires!r} is not of the form >=X.Y")
    need = (int(found.group(1)), int(found.group(2)))
    shown = ".".join(map(str, version))
    if tuple(version[:2]) >= need:
        return f"Python {shown} (the course needs {requires})", []
    return f"Python {shown}", [Problem(f"this is Python {shown}; the course needs Python {requires}",
                                       f"run the check in the course's environment: `make check` (`make check "
                                       f"PYTHON=/path/to/python{need[0]}.{need[1]}` picks the interpreter), or without "
                                       f"make `uv run python -m helpers.check`")]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def required_packages(lock: dict, torch_local: bool = False, environment: dict | None = None) -> dict[str, str]:
    """``{name: locked version}``: the lock's root project, its dependencies (no extras) and theirs,
    on this platform (dependency markers evaluated for ``environment``, default this interpreter).

    ``torch_local``: torch is a local build (e.g. ``2.15.0+cpu`` from PyTorch's CPU index, README
    "A CPU-only torch"): its Linux-only requirements (the CUDA libraries) are not required, as in
    ``tools/torch-cuda-packages``.
    """
    from packaging.markers import Marker

    env = {"extra": "", **(environment or {})}
    packages = {_normalise(p["name"]): p for p in lock["package"]}
    roots = [p for p in lock["package"] if "editable" in p.get("source", {}) or "virtual" in p.get("source", {})]
    if len(roots) != 1:
        raise ValueError(f"uv.lock: expected one project of its own (source editable), found {len(roots)}")
    required: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()  # (package, "" for its own requirements or one of its extras)
    todo = [(roots[0]["name"], "")]
    while todo:
        name, extra = todo.pop()
        key = (_normalise(name), extra)
        if key in seen:
            continue
        seen.add(key)
        pkg = packages.get(key[0])
        if pkg is None:
            raise ValueError(f"uv.lock: {name} is required but has no [[package]] entry")
        required[key[0]] = pkg["version"]
        deps = pkg.get("optional-dependencies", {}).get(extra, []) if extra else pkg.get("dependencies", [])
        for dep in deps:
            marker = dep.get("marker")
            if torch_local and key[0] == "torch" and marker and "sys_platform == 'linux'" in marker:
                continue
            if marker and not Marker(marker).evaluate(env):
                continue
            todo += [(dep["name"], e) for e in ("", *dep.get("extra", ()))]
    return required


def _same_version(installed: str, locked: str) -> bool:
    """Equal as versions, a local label aside (``2.15.0+cpu`` matches ``2.15.0``)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(installed).public == Version(locked).public
    except InvalidVersion:
        return installed.split("+")[0] == locked


def check_versions(lock: dict | Path = LOCK, installed=_installed, conda: bool | None = None):
    """Every package of :func:`required_packages` installed at its locked version.

    ``installed``: name -> version or None (default: importlib.metadata). In a conda environment
    (README's conda route, whose versions come from conda-forge) only the course's direct
    dependencies are checked, against pyproject.toml's ranges.
    """
    import tomllib

    if conda is None:
        conda = (Path(sys.prefix) / "conda-meta").is_dir()
    if conda:
        return _check_ranges(installed)
    if isinstance(lock, Path):
        lock = tomllib.loads(lock.read_text(encoding="utf-8"))
    torch = installed("torch")
    required = required_packages(lock, torch_local=bool(torch and "+" in torch))
    problems = []
    for name, locked in sorted(required.items()):
        have = installed(name)
        if have is None:
            problems.append(Problem(f"{name} is not installed (uv.lock pins {locked})", RESYNC))
        elif not _same_version(have, locked):
            problems.append(Problem(f"{name} {have} is installed, uv.lock pins {locked}", RESYNC))
    return f"{len(required) - len(problems)} of {len(required)} packages as pinned in uv.lock", problems


def _check_ranges(installed):
    import tomllib

    from packaging.requirements import Requirement

    deps = [Requirement(d) for d in tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]]
    fix = "run `conda env update -f environment.yml`"
    problems = []
    for req in deps:
        have = installed(req.name)
        if have is None:
            problems.append(Problem(f"{req.name} is not installed (the course needs {req})", fix))
        elif not req.specifier.contains(have, prereleases=True):
            problems.append(Problem(f"{req.name} {have} is installed, the course needs {req}", fix))
    return f"conda: {len(deps) - len(problems)} of {len(deps)} packages in pyproject.toml's ranges", problems


def kernel_specs() -> dict[str, dict]:
    """``{name: kernel.json contents}`` of the kernels Jupyter finds (not ipykernel's built-in one,
    which runs whatever Python runs Jupyter)."""
    from jupyter_client.kernelspec import KernelSpecManager

    return {name: d["spec"] for name, d in KernelSpecManager(ensure_native_kernel=False).get_all_specs().items()}


def imports_helpers(python: str) -> bool:
    """Does ``python`` import this copy's ``helpers`` from outside the repository (as a kernel does)?"""
    code = "import helpers; print(helpers.__file__)"
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, cwd=tempfile.gettempdir())
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and Path(out.stdout.strip()).resolve().parent == ROOT / "helpers"


def check_kernel(specs: dict[str, dict] | None = None, probe=imports_helpers):
    """A registered Jupyter kernel whose interpreter imports the course's helpers (the notebooks'
    ``python3`` first, then "Python 3 (course)", then any other Python kernel)."""
    specs = kernel_specs() if specs is None else specs
    order = sorted(specs, key=lambda n: (n != KERNEL_NAME, specs[n].get("display_name") != KERNEL_DISPLAY, n))
    tried = []
    for name in order:
        spec = specs[name]
        argv = spec.get("argv") or [""]
        if spec.get("language", "python") != "python" or "python" not in Path(argv[0]).name.lower():
            continue
        if probe(argv[0]):
            return f'Jupyter kernel "{spec.get("display_name", name)}" runs {argv[0]}', []
        tried.append(f'"{spec.get("display_name", name)}" ({argv[0]})')
    if tried:
        what = f"no Jupyter kernel imports this course's helpers (tried {', '.join(tried)})"
    else:
        what = "no Jupyter kernel is registered for this environment"
    return "Jupyter kernel", [Problem(what, KERNEL_FIX)]


def _pytensor_config():
    """PyTensor's config; importing PyTensor fails when its compiledir cannot be created."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pytensor
    return pytensor.config


def check_compiler(cxx: str | None = None, platform_name: str = sys.platform):
    """PyTensor's C++ compiler (``pytensor.config.cxx``). None is a warning, not a failure: the
    course's sampler runs on Numba; PyTensor's C code (``pymc_backend="c"``) falls back to Python."""
    if cxx is None:
        try:
            cxx = _pytensor_config().cxx
        except Exception:
            return "C compiler: not checked (PyTensor does not start, see the cache folders)", []
    if cxx:
        return f"C compiler for PyTensor: {cxx}", []
    fix = COMPILER_FIX.get(platform_name, COMPILER_FIX["linux"])
    return "C compiler for PyTensor: none", [Problem(
        "no C compiler found: PyTensor runs its C operations as slow Python code", fix, fatal=False)]


def writable(folder: Path) -> str | None:
    """None when a file can be created in ``folder`` (created if missing); else the reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".check-") as fh:
            fh.write(b"ok")
            fh.flush()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def default_cache_folders() -> dict[str, Path]:
    """The course's cache (``build/cache``, ``COURSE_CACHE_DIR`` moves it) and PyTensor's compiledir."""
    compiledir = Path(_pytensor_config().compiledir)  # first: it raises when PyTensor cannot start
    from helpers.bayes import CACHE_DIR

    return {"the course's cache folder": CACHE_DIR, "PyTensor's compile folder": compiledir}


def check_caches(folders: dict[str, Path] | None = None, probe=writable):
    """Every folder of ``folders`` (label -> path) writable."""
    if folders is None:
        try:
            folders = default_cache_folders()
        except ValueError as e:  # PyTensor refuses to start when it cannot create its compiledir
            return "cache folders", [Problem(f"PyTensor cannot create its compile folder ({str(e).splitlines()[0]})",
                                             "point PyTensor at a folder you can write: `export PYTENSOR_FLAGS=base_compiledir=/a/writable/folder`")]
    fixes = {"the course's cache folder": "make it writable for you, or point the course elsewhere: `export COURSE_CACHE_DIR=/a/writable/folder`",
             "PyTensor's compile folder": "make it writable for you, or `export PYTENSOR_FLAGS=base_compiledir=/a/writable/folder`"}
    problems = []
    for label, folder in folders.items():
        reason = probe(Path(folder))
        if reason is not None:
            problems.append(Problem(f"{label} {folder} is not writable ({reason})", fixes.get(label, "make it writable for you")))
    return f"cache folders{'' if problems else ' writable'}: " + ", ".join(str(f) for f in folders.values()), problems


# --- the real work ------------------------------------------------------------------------------


def tiny_fit():
    """The funnel model on the course's data, nutpie, :data:`FIT`; returns its ``FunnelDraws``."""
    from helpers import bayes, data

    df = data.load_daily(data.DATA_PATH)
    idata = bayes.fit_funnel(df, bayes.FitSettings(**FIT), progressbar=False)
    return bayes.to_funnel_draws(idata)


def one_ppo_update(draws):
    """One rollout and one update of PPO on the budget env built from ``draws``; returns its record."""
    import math

    from helpers import training
    from helpers.ppo import PPO as Agent

    config = training.budget_ppo_config(**PPO)
    agent = Agent(training.make_envs(draws, num_envs=PPO_ENVS), config)
    history = agent.learn(config.num_steps * PPO_ENVS, progress=False)
    record = history.iloc[-1]
    if len(history) != 1 or not all(math.isfinite(record[k]) for k in ("policy_loss", "value_loss", "approx_kl")):
        raise RuntimeError(f"the update gave non-finite losses: {record.to_dict()}")
    return record


def ppo_update_on_truth() -> tuple[float, float]:
    """:func:`one_ppo_update` on the ground truth (a one-draw posterior); returns (wall, CPU) seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    from helpers.bayes import FunnelDraws
    from helpers.data import TRUE_PARAMS

    _quietly(one_ppo_update, FunnelDraws.from_dict(TRUE_PARAMS))
    return time.perf_counter() - t0, time.process_time() - c0


def start_ppo_update():
    """:func:`ppo_update_on_truth` in a fresh process, started now; returns its future.

    The fit (PyMC, PyTensor, Numba) and the update (torch) import and compile different stacks,
    one core each: side by side they take about as long as the fit alone. A *spawned* process:
    forking one in which BLAS or torch started threads can hang.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(ppo_update_on_truth)
    pool.shutdown(wait=False)  # the process exits once the update is done
    return future


def _quietly(fn, *args):
    """Run ``fn`` with the libraries' warnings and log chatter off (the check prints its own lines)."""
    import logging

    loggers = [logging.getLogger(n) for n in ("pymc", "pytensor", "nutpie", "numba")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _failure(step: str, e: BaseException) -> Problem:
    first = (str(e).strip().splitlines() or [""])[0][:300]
    return Problem(f"{step} failed: {type(e).__name__}: {first}",
                   "re-install with `make env` (without make: `uv sync --locked`); if that does not help, send "
                   "this line and the check's output to the instructor")


def versions_line(seconds: float) -> str:
    system = {"Darwin": "macOS"}.get(platform.system(), platform.system())
    parts = [f"{system} {platform.machine()}", f"Python {platform.python_version()}"]
    parts += [f"{label} {_installed(name)}" for label, name in (("PyMC", "pymc"), ("nutpie", "nutpie"), ("torch", "torch"))]
    return " · ".join(["Environment OK", *parts, f"{seconds:.0f} s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.check", description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=LOCK, help="the lock file to compare with (default: uv.lock)")
    parser.add_argument("--timings", type=Path, help="also write each step's seconds to this JSON file")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    problems: list[Problem] = []
    timings: dict[str, float] = {}
    print("Checking the course environment (about a minute) ...", flush=True)

    def step(key, fn, *a):
        t0 = time.perf_counter()
        try:
            summary, found = fn(*a)
        except Exception as e:
            summary, found = key, [_failure(f"the check of {key}", e)]
        timings[f"{key}_s"] = time.perf_counter() - t0
        fatal = [p for p in found if p.fatal]
        mark = "✗" if fatal else "!" if found else "✓"
        count = f": {len(fatal)} problem{'s' * (len(fatal) > 1)} (below)" if fatal else ""
        print(f"{mark} {summary}{count}", flush=True)
        problems.extend(found)
        return not fatal

    # Each stage runs only once the one before it passed: a wrong Python or a missing package would
    # only make the later steps fail in confusing ways, and the fix comes first.
    ready = step("python", check_python) and step("versions", check_versions, args.lock)
    if ready:
        step("kernel", check_kernel)
        step("compiler", check_compiler)
        ready = step("caches", check_caches)
    if ready:
        ppo, t0 = start_ppo_update(), time.perf_counter()  # beside the fit, in its own process
        try:
            _quietly(tiny_fit)
            print(f"✓ tiny Bayesian fit: nutpie, {FIT['chains']} chains x ({FIT['tune']} tune + {FIT['draws']} draws), "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
        except Exception as e:
            problems.append(_failure("the tiny Bayesian fit", e))
            print("✗ tiny Bayesian fit: 1 problem (below)", flush=True)
        timings["fit_s"] = time.perf_counter() - t0
        try:
            timings["ppo_s"], timings["ppo_cpu_s"] = ppo.result()
            print(f"✓ one PPO update on the budget env: {PPO_ENVS} months x {PPO['num_steps']} days, "
                  f"{timings['ppo_s']:.1f} s", flush=True)
        except Exception as e:
            problems.append(_failure("the PPO update", e))
            print("✗ one PPO update on the budget env: 1 problem (below)", flush=True)
    else:
        print("· the remaining steps (tiny fit, PPO update ...): skipped until the problems below are fixed", flush=True)

    total = time.perf_counter() - t_start
    timings["total_s"], timings["main_cpu_s"] = total, time.process_time()
    if args.timings:
        args.timings.parent.mkdir(parents=True, exist_ok=True)
        args.timings.write_text(json.dumps(timings, indent=2) + "\n", encoding="utf-8")
    for p in problems:
        print(p, flush=True)
    if any(p.fatal for p in problems):
        return 1
    print(versions_line(total), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
