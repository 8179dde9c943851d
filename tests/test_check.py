"""helpers.check, the attendee's pre-flight check (`make check` = `python -m helpers.check`).

One real run (a subprocess: the tiny fit and the PPO update included, ~30-60 s on 2 cores);
everything else is simulated by feeding the checks doctored inputs (a lock, installed versions,
kernel specs, folders) or a doctored lock file on the command line, and takes a few seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import check

ROOT = Path(__file__).resolve().parent.parent


def run_check(*args: str, env: dict | None = None, python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "helpers.check", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TQDM_DISABLE": "1", **(env or {})}, timeout=600)


def problem_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Problem: ")]


# --- the real run ------------------------------------------------------------------------------


def test_the_whole_check_passes_here_and_leaves_the_course_cache_alone(tmp_path):
    cache = tmp_path / "course_cache"
    proc = run_check(env={"COURSE_CACHE_DIR": str(cache)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"Environment OK · \S+ \S+ · Python 3\.\d+\.\d+ · PyMC \S+ · nutpie \S+ · torch \S+ · \d+ s", lines[-1]), lines[-1]
    for step in ("packages as pinned in uv.lock", "Jupyter kernel", "C compiler", "cache folders writable",
                 "tiny Bayesian fit", "one PPO update"):
        assert any(line.startswith(("✓", "!")) and step in line for line in lines), (step, out)
    assert not problem_lines(out) and "Traceback" not in out
    assert cache.is_dir() and not any(cache.iterdir())  # probed for writing, nothing left in it


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_check_runs_this_command_in_the_course_environment():
    # not the variables of a `make test` around this run (they make the inner make print its folder)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(["make", "--no-print-directory", "-n", "check"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == ".venv/bin/python -m helpers.check"  # what the test above runs


# --- simulated problems, end to end ------------------------------------------------------------


def doctored_lock(tmp_path: Path, package: str = "numpy", version: str = "1.0.0") -> Path:
    text, n = re.subn(rf'(\[\[package\]\]\nname = "{package}"\nversion = ")[^"]+"', rf'\g<1>{version}"',
                      (ROOT / "uv.lock").read_text())
    assert n == 1
    path = tmp_path / "uv.lock"
    path.write_text(text)
    return path


def test_a_wrong_version_in_a_subprocess_gives_one_problem_line_and_exit_code_1(tmp_path):
    proc = run_check("--lock", str(doctored_lock(tmp_path)))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    installed = check._installed("numpy")
    assert problem_lines(out) == [f"Problem: numpy {installed} is installed, uv.lock pins 1.0.0. Fix: {check.RESYNC}"]
    assert proc.stdout.rstrip().splitlines()[-1].startswith("Problem: ")  # the problems end the output
    assert "Traceback" not in out and "Environment OK" not in out
    assert "skipped until the problems below are fixed" in proc.stdout  # no fit with a wrong stack


def test_a_too_old_python_gets_one_line():
    old = next((p for p in map(shutil.which, ("python3.11", "python3.10", "python3")) if p and subprocess.run(
        [p, "-c", "import sys; sys.exit(sys.version_info >= (3, 12))"]).returncode == 0), None)
    if old is None:
        pytest.skip("no Python older than 3.12 on this machine")
    proc = run_check(python=old, env={"PYTHONPATH": str(ROOT)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    [line] = problem_lines(out)
    assert re.fullmatch(r"Problem: this is Python 3\.1[01]\.\d+; the course needs Python >=3\.12\. Fix: run the check in the "
                        r"course's environment: `make check` .*`uv run python -m helpers.check`", line)
    assert "Traceback" not in out


# --- each check with injected inputs -----------------------------------------------------------


def test_python_version_against_requires_python():
    assert check.requires_python() == ">=3.12"  # pyproject.toml's
    assert check.check_python((3, 12, 0), ">=3.12")[1] == []
    assert check.check_python((3, 13, 1), ">=3.12")[1] == []
    [p] = check.check_python((3, 11, 9), ">=3.12")[1]
    assert p.fatal and "Python 3.11.9" in p.what and ">=3.12" in p.what and "PYTHON=/path/to/python3.12" in p.fix


def fake_lock(**deps_of_b) -> dict:
    """course -> a, b; b -> c (and ``deps_of_b``); c -> b (a cycle); d, e, f, torch locked but not required."""
    return {"package": [
        {"name": "course", "version": "0.1.0", "source": {"editable": "."},
         "dependencies": [{"name": "a"}, {"name": "B_pkg"}], "optional-dependencies": {"test": [{"name": "d"}]}},
        {"name": "a", "version": "1.0"},
        {"name": "b-pkg", "version": "2.0", "dependencies": [{"name": "c"}, *deps_of_b.get("deps", [])]},
        {"name": "c", "version": "3.0", "dependencies": [{"name": "b-pkg"}]},
        {"name": "d", "version": "4.0"},
        {"name": "e", "version": "5.0", "optional-dependencies": {"fast": [{"name": "d"}]}},
        {"name": "torch", "version": "2.15.0", "dependencies": [
            {"name": "a"}, {"name": "nvidia-x", "marker": "sys_platform == 'linux'"}]},
        {"name": "nvidia-x", "version": "13.0"},
        {"name": "f", "version": "6.0"},
    ]}


ALL = {"course": "0.1.0", "a": "1.0", "b-pkg": "2.0", "c": "3.0"}


def test_versions_all_pinned():
    summary, problems = check.check_versions(fake_lock(), ALL.get, conda=False)
    assert problems == [] and summary.startswith("4 of 4 packages")


def test_a_missing_package_is_one_problem():
    summary, problems = check.check_versions(fake_lock(), {**ALL, "c": None}.get, conda=False)
    assert [str(p) for p in problems] == [f"Problem: c is not installed (uv.lock pins 3.0). Fix: {check.RESYNC}"]


def test_a_wrong_version_is_one_problem():
    summary, problems = check.check_versions(fake_lock(), {**ALL, "b-pkg": "1.9"}.get, conda=False)
    assert [str(p) for p in problems] == [f"Problem: b-pkg 1.9 is installed, uv.lock pins 2.0. Fix: {check.RESYNC}"]
    assert summary.startswith("3 of 4 packages")


def test_markers_extras_and_local_builds():
    linux, mac = {"sys_platform": "linux"}, {"sys_platform": "darwin"}
    lock = fake_lock(deps=[{"name": "e", "extra": ["fast"]}, {"name": "torch"},
                           {"name": "f", "marker": "python_full_version < '3.0'"}])
    assert set(check.required_packages(lock, environment=linux)) == {"course", "a", "b-pkg", "c", "e", "d", "torch", "nvidia-x"}
    assert "nvidia-x" not in check.required_packages(lock, environment=mac)
    # torch from PyTorch's CPU index (2.15.0+cpu): its Linux-only CUDA requirements are not needed
    assert "nvidia-x" not in check.required_packages(lock, torch_local=True, environment=linux)
    assert check._same_version("2.15.0+cpu", "2.15.0") and not check._same_version("2.14.0+cpu", "2.15.0")


def test_the_real_lock_requires_the_course_stack_but_not_the_test_extras():
    import tomllib

    required = check.required_packages(tomllib.loads((ROOT / "uv.lock").read_text()))
    assert {"pymc", "nutpie", "torch", "numpy", "jupyterlab", "ipykernel", "rl-marketing-course"} <= set(required)
    assert not {"pytest", "hypothesis", "stable-baselines3", "jupyterhub"} & set(required)


def test_conda_compares_with_pyprojects_ranges():
    installed = {"numpy": "1.26.4", "pymc": None}
    _, problems = check.check_versions(installed=lambda n: installed.get(n, check._installed(n)), conda=True)
    whats = sorted(p.what for p in problems)
    assert len(whats) == 2 and whats[0].startswith("numpy 1.26.4 is installed, the course needs numpy>=2.1")
    assert whats[1].startswith("pymc is not installed") and "environment.yml" in problems[0].fix


def test_kernel_found_broken_or_missing():
    ok = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Python 3 (course)", "language": "python"}
    broken = {**ok, "argv": ["/nonexistent/bin/python3", "-m", "ipykernel_launcher"]}
    other = {"argv": ["/usr/bin/R", "--slave"], "display_name": "R", "language": "R"}
    summary, problems = check.check_kernel({"python3": ok, "ir": other})
    assert problems == [] and sys.executable in summary
    [p] = check.check_kernel({"python3": broken, "ir": other})[1]
    assert "/nonexistent/bin/python3" in p.what and "ipykernel install --sys-prefix --name python3" in p.fix
    [p] = check.check_kernel({"ir": other})[1]
    assert p.what == "no Jupyter kernel is registered for this environment"
    assert check.check_kernel({"python3": broken, "course": ok})[1] == []  # any kernel that works will do


def test_no_compiler_is_a_warning_with_the_way_to_get_one():
    assert check.check_compiler("/usr/bin/g++")[1] == []
    [p] = check.check_compiler("", "darwin")[1]
    assert not p.fatal and "xcode-select --install" in p.fix and str(p).startswith("Warning: ")
    assert "apt-get install g++" in check.check_compiler("", "linux")[1][0].fix


def test_an_unwritable_cache_folder_is_one_problem(tmp_path):
    (tmp_path / "a_file").write_text("")
    good, bad = tmp_path / "cache", tmp_path / "a_file" / "cache"  # a folder under a file: not even root can create it
    summary, problems = check.check_caches({"the course's cache folder": good, "PyTensor's compile folder": bad})
    assert [p.what for p in problems] == [f"PyTensor's compile folder {bad} is not writable (Not a directory)"]
    assert "base_compiledir" in problems[0].fix
    assert good.is_dir() and not any(good.iterdir())  # the probe cleans up after itself
    [p] = check.check_caches({"the course's cache folder": good}, probe=lambda folder: "Permission denied")[1]
    assert str(p) == (f"Problem: the course's cache folder {good} is not writable (Permission denied). "
                      "Fix: make it writable for you, or point the course elsewhere: `export COURSE_CACHE_DIR=/a/writable/folder`")


def test_pytensor_refusing_its_compile_folder_is_one_problem(monkeypatch):
    def refuse():  # what importing PyTensor raises when base_compiledir cannot be created
        raise ValueError("Unable to create the compiledir directory '/x/compiledir_Linux'. Check the permissions.")

    monkeypatch.setattr(check, "_pytensor_config", refuse)
    assert check.check_compiler() == ("C compiler: not checked (PyTensor does not start, see the cache folders)", [])
    [p] = check.check_caches()[1]
    assert p.what == "PyTensor cannot create its compile folder (Unable to create the compiledir directory '/x/compiledir_Linux'. Check the permissions.)"
    assert "PYTENSOR_FLAGS=base_compiledir=" in p.fix


# --- the orchestration -------------------------------------------------------------------------


def test_a_failing_step_is_one_line_and_the_rest_goes_on(monkeypatch, capsys):
    from concurrent.futures import Future

    monkeypatch.setattr(check, "check_versions", lambda lock: ("versions", []))
    monkeypatch.setattr(check, "check_kernel", lambda: 1 / 0)  # a bug in a check: still no traceback
    monkeypatch.setattr(check, "check_compiler", lambda: ("C compiler", []))
    monkeypatch.setattr(check, "check_caches", lambda: ("caches", []))

    def broken_fit():
        raise FloatingPointError("NaN log-probability\nsecond line")

    def ppo_result(result=None, error=None):
        future = Future()
        future.set_exception(error) if error else future.set_result(result)
        return lambda: future

    fix = check._failure("", ValueError()).fix
    monkeypatch.setattr(check, "tiny_fit", broken_fit)
    monkeypatch.setattr(check, "start_ppo_update", ppo_result((1.5, 1.2)))
    assert check.main([]) == 1
    out = capsys.readouterr().out
    assert problem_lines(out) == [
        f"Problem: the check of kernel failed: ZeroDivisionError: division by zero. Fix: {fix}",
        f"Problem: the tiny Bayesian fit failed: FloatingPointError: NaN log-probability. Fix: {fix}",
    ]
    assert "✓ one PPO update on the budget env: 16 months x 8 days, 1.5 s" in out and "Traceback" not in out

    monkeypatch.setattr(check, "tiny_fit", lambda: None)
    monkeypatch.setattr(check, "check_kernel", lambda: ("kernel", []))
    monkeypatch.setattr(check, "start_ppo_update", ppo_result(error=RuntimeError("the update gave non-finite losses")))
    assert check.main([]) == 1
    out = capsys.readouterr().out
    assert problem_lines(out) == [f"Problem: the PPO update failed: RuntimeError: the update gave non-finite losses. Fix: {fix}"]
    assert "✓ tiny Bayesian fit" in out and "✗ one PPO update" in out and "Environment OK" not in out
