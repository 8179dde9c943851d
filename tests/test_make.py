"""How `make` finds its Python (tools/find-python): >= 3.12 by itself, or one clear line.

The search is tried against fake interpreters in a private PATH and a private pyenv root, so
the test does not depend on which Pythons this machine has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIND = ROOT / "tools" / "find-python"


def fake_python(path: Path, version: str) -> Path:
    """A shell script that answers find-python's two questions as Python ``version`` would."""
    ok = tuple(int(x) for x in version.split(".")[:2]) >= (3, 12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n"
        'case "$2" in\n'
        f"  *sys.exit*) exit {0 if ok else 1} ;;\n"
        f"  *sys.executable*) echo {path} ;;\n"
        f"  *version_info*) echo {version} ;;\n"
        "esac\n"
    )
    path.chmod(0o755)
    return path


def run_find(tmp_path: Path, bin_dir: Path) -> subprocess.CompletedProcess:
    tools = tmp_path / "tools"  # the POSIX tools the script uses, and nothing else
    tools.mkdir(exist_ok=True)
    for name in ("ls", "sort"):
        target = tools / name
        if not target.exists():
            target.symlink_to(shutil.which(name))
    env = {"PATH": f"{bin_dir}:{tools}", "HOME": str(tmp_path / "home")}
    return subprocess.run(["/bin/sh", str(FIND)], env=env, capture_output=True, text=True)


def test_python_3_12_is_preferred_to_3_13(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3", "3.11.7")
    fake_python(bin_dir / "python3.13", "3.13.0")
    want = fake_python(bin_dir / "python3.12", "3.12.1")
    out = run_find(tmp_path, bin_dir)
    assert out.returncode == 0 and out.stdout.strip() == str(want)


def test_a_python3_that_is_new_enough_is_taken(tmp_path):
    bin_dir = tmp_path / "bin"
    want = fake_python(bin_dir / "python3", "3.13.2")
    out = run_find(tmp_path, bin_dir)
    assert out.returncode == 0 and out.stdout.strip() == str(want)


def test_pyenv_versions_that_are_not_selected_are_found(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3", "3.11.7")
    versions = tmp_path / "home" / ".pyenv" / "versions"
    fake_python(versions / "3.12.1" / "bin" / "python3.12", "3.12.1")
    want = fake_python(versions / "3.12.10" / "bin" / "python3.12", "3.12.10")  # newest patch wins
    fake_python(versions / "3.13.0" / "bin" / "python3.13", "3.13.0")
    out = run_find(tmp_path, bin_dir)
    assert out.returncode == 0 and out.stdout.strip() == str(want)


def test_no_suitable_python_gives_one_clear_line(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3", "3.11.7")
    out = run_find(tmp_path, bin_dir)
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert "needs Python >= 3.12" in line  # what it needs
    assert "python3=3.11.7" in line  # what it found
    assert "pyenv install 3.12" in line and "PYTHON=" in line  # how to get it


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_stops_with_that_line_before_touching_anything(tmp_path):
    """`make test` in a copy of the project, with no Python >= 3.12 anywhere: one line, exit 2."""
    for name in ("Makefile", "pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("tools", "jupyterlab-settings"):  # folders the environment's recipe reads
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3", "3.11.7")
    for name in ("ls", "sort", "sh", "id", "make"):
        (bin_dir / name).symlink_to(shutil.which(name))
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path / "home")}
    out = subprocess.run(["make", "-s", "test"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "needs Python >= 3.12" in out.stderr and "python3=3.11.7" in out.stderr
    assert not (tmp_path / ".tools").exists() and not (tmp_path / ".venv").exists()


def test_this_environment_is_on_a_supported_python():
    assert sys.version_info >= (3, 12), f"the course's .venv runs Python {sys.version.split()[0]}"
    assert os.access(FIND, os.X_OK)
