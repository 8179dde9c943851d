"""binder/: what repo2docker (Binder, or a Zero to JupyterHub image) builds the course from.

(a) binder/requirements.txt is what `make binder` (tools/export-binder) writes from uv.lock today,
    pins exactly the lock's versions, covers the course's own dependencies and nothing of the
    test/compare/hub extras or of torch's CUDA-only packages, and takes torch from PyTorch's CPU
    index. binder/runtime.txt asks for the Python CI tests and pyproject.toml allows.
(b) The build itself, as repo2docker's Python build does it (one environment for the server and
    the kernel; `pip install -r binder/requirements.txt`; `binder/postBuild` in the clone): a fresh
    virtual environment from the Python tools/find-python finds, the requirements installed with
    uv (from its cache), postBuild run with that environment first on PATH, then notebook 01 in
    quick mode and `python -m helpers.check` with that environment's python.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
UV = ROOT / ".tools" / "bin" / "uv"
CPU_INDEX_LINE = "--extra-index-url https://download.pytorch.org/whl/cpu"
NOTEBOOK_01 = ROOT / "notebooks" / "01_the_marketing_problem.ipynb"


def lock_packages() -> dict[str, dict]:
    return {p["name"]: p for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}


def cuda_only() -> set[str]:
    flags = subprocess.run([sys.executable, str(ROOT / "tools" / "torch-cuda-packages"), "--uv-flags"],
                           check=True, capture_output=True, text=True).stdout.split()
    return {f for f in flags if not f.startswith("--")} - {"torch"}


def pins(text: str) -> dict[str, Requirement]:
    """``name -> Requirement`` of every requirement line (comments and options skipped)."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        req = Requirement(line)
        assert canonicalize_name(req.name) not in out, f"binder/requirements.txt line {n}: {req.name} pinned twice"
        out[canonicalize_name(req.name)] = req
    return out


def attendee_closure(packages: dict[str, dict]) -> set[str]:
    """Every package the project's own `dependencies` reach in the lock (all platforms; the extras
    a requirement names, e.g. ``jsonschema[format-nongpl]``, followed; the project's extras not)."""
    (project,) = [p for p in packages.values() if "editable" in p.get("source", {}) or "virtual" in p.get("source", {})]
    todo = [(d["name"], e) for d in project.get("dependencies", []) for e in ("", *d.get("extra", ()))]
    seen: set[tuple[str, str]] = set()
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        deps = packages[name].get("optional-dependencies", {}).get(extra, []) if extra else packages[name].get("dependencies", [])
        todo += [(d["name"], e) for d in deps for e in ("", *d.get("extra", ()))]
    return {name for name, _ in seen}


# --- (a) the files ------------------------------------------------------------------------------


@pytest.mark.skipif(not UV.exists(), reason=f"{UV} missing: run `make test` (it bootstraps uv)")
def test_requirements_are_what_make_binder_writes_from_the_lock(tmp_path):
    out = tmp_path / "requirements.txt"
    subprocess.run([sys.executable, str(ROOT / "tools" / "export-binder"), "--output", str(out), "--uv", str(UV)],
                   check=True, capture_output=True, text=True)
    assert out.read_text() == (BINDER / "requirements.txt").read_text(), (
        "binder/requirements.txt no longer matches uv.lock: run `make binder` and commit the result")


def test_every_pin_is_the_locks_version_and_only_the_attendees_set():
    text = (BINDER / "requirements.txt").read_text()
    packages = lock_packages()
    got = pins(text)
    for name, req in got.items():
        (spec,) = req.specifier
        assert spec.operator == "==", f"binder/requirements.txt: {req} is not an exact pin"
        assert name in packages, f"binder/requirements.txt: {name} is not in uv.lock"
        assert spec.version == packages[name]["version"], (
            f"binder/requirements.txt: {name}=={spec.version}, uv.lock has {packages[name]['version']}")
    cuda = cuda_only()
    assert {"triton", "nvidia-cublas"} <= cuda  # the helper still finds them
    assert set(got) == attendee_closure(packages) - cuda
    for name in got:
        assert not name.startswith(("nvidia-", "cuda-")) and name != "triton", f"{name}: a CUDA-only package"
    # the course's own dependencies are all there; the extras' own packages are not
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {canonicalize_name(Requirement(d).name) for d in project["dependencies"]} <= set(got)
    for name in ("pytest", "stable-baselines3", "jupyterhub", "playwright", "hypothesis"):
        assert name not in got, f"{name} belongs to an extra, not to the attendee's environment"


def test_torch_comes_from_the_cpu_index():
    lines = [ln.strip() for ln in (BINDER / "requirements.txt").read_text().splitlines()]
    options = [ln for ln in lines if ln.startswith("-")]
    assert options == [CPU_INDEX_LINE]
    torch = pins("\n".join(lines))["torch"]
    locked = lock_packages()["torch"]["version"]
    assert str(torch.specifier) == f"=={locked}"
    # why pip then installs the CPU build: the pin matches the local variant, which sorts higher
    assert SpecifierSet(f"=={locked}").contains(f"{locked}+cpu")
    assert Version(f"{locked}+cpu") > Version(locked)


def test_runtime_is_the_tested_python_and_postbuild_is_executable():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime), runtime
    version = runtime.removeprefix("python-")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert Version(version) in SpecifierSet(requires)
    assert version == "3.12"  # the Python CI tests (tools/find-python prefers it)
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK) and post.read_text().startswith("#!/bin/bash\n")
    assert "set -e" in post.read_text()  # repo2docker does not stop on a failing command otherwise


# --- (b) the build, as repo2docker does it --------------------------------------------------------


def found_python() -> str | None:
    out = subprocess.run([str(ROOT / "tools" / "find-python")], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.mark.skipif(not UV.exists(), reason=f"{UV} missing: run `make test` (it bootstraps uv)")
def test_a_binder_build_runs_the_course(tmp_path):
    """repo2docker's Python build, without Docker: fresh environment, requirements, postBuild, run.

    PyTorch's CPU index is not reachable from CI (only PyPI is), so PyPI's torch stands in for the
    CPU build: the extra-index line is dropped and the lock's pins of torch's CUDA-only packages
    (which PyPI's torch needs to import) are added; everything else is binder/requirements.txt as
    written. uv installs it from its cache (hard links), so the install takes seconds.
    """
    python = found_python()
    if python is None:
        pytest.skip("tools/find-python found no Python >= 3.12")
    if subprocess.run([python, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 12))"]).returncode:
        pytest.skip(f"{python} is not Python 3.12, the version binder/runtime.txt asks for")
    packages = lock_packages()
    text = (BINDER / "requirements.txt").read_text()
    assert CPU_INDEX_LINE in text.splitlines()
    stand_in = tmp_path / "requirements-pypi.txt"
    stand_in.write_text(text.replace(CPU_INDEX_LINE + "\n", "")
                        + "".join(f"{n}=={packages[n]['version']}\n" for n in sorted(cuda_only())))
    env_dir = tmp_path / "env"
    timings = {}

    def cpu_s():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    def step(name, cmd, **kw):
        t0, c0 = time.perf_counter(), cpu_s()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)
        timings[name] = (time.perf_counter() - t0, cpu_s() - c0)
        assert out.returncode == 0, f"{name} failed ({' '.join(map(str, cmd))}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out

    step("venv", [str(UV), "venv", "--quiet", "--python", python, str(env_dir)])
    step("install", [str(UV), "pip", "install", "--quiet", "--python", str(env_dir / "bin" / "python"), "-r", str(stand_in)])
    (tmp_path / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "COURSE_QUICK")}
    env.update(PATH=f"{env_dir / 'bin'}:{env['PATH']}", VIRTUAL_ENV=str(env_dir), TQDM_DISABLE="1",
               COURSE_CACHE_DIR=str(tmp_path / "cache"), HOME=str(tmp_path / "home"))
    post = step("postBuild", [str(BINDER / "postBuild")], cwd=ROOT, env=env)
    assert f"helpers from {ROOT / 'helpers'}" in post.stdout
    assert shutil.which("python", path=env["PATH"]) == str(env_dir / "bin" / "python")
    # the environment has the course's kernel and nothing of the developer's extras
    step("no-extras", ["python", "-c", "import importlib.util as u, sys; "
                       "sys.exit(any(u.find_spec(m) for m in ('pytest', 'stable_baselines3', 'jupyterhub')))"],
         cwd=tmp_path, env=env)
    step("notebook 01", ["python", "-m", "helpers.course", str(NOTEBOOK_01), "--quick", "--out", str(tmp_path / "out")],
         cwd=tmp_path, env=env)
    assert (tmp_path / "out" / NOTEBOOK_01.name).exists()
    check = step("helpers.check", ["python", "-m", "helpers.check"], cwd=tmp_path, env=env)
    assert "Environment OK" in check.stdout
    print("binder build, seconds (wall / CPU): " + ", ".join(f"{k} {w:.1f} / {c:.1f}" for k, (w, c) in timings.items()))
