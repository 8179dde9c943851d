"""The README's install routes, as an attendee types them.

* "Without make (macOS and Windows)": its four lines, taken from the README (not retyped), run on
  a clean copy of the course: uv installs the lock, registers the kernel, `helpers.check` says
  "Environment OK", and JupyterLab serves notebook 01. The shell and PowerShell blocks must be
  the same four lines.
* The platforms table says what the lock holds: checked against uv.lock's torch wheels.
* The Makefile and tools/find-python use POSIX commands only (macOS's BSD tools run them).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
UV = ROOT / ".tools" / "bin" / "uv"


def section(title: str) -> str:
    """The README's text from the heading ``title`` to the next heading of any level."""
    m = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", README, flags=re.S | re.M)
    assert m, f"README.md has no section {title!r}"
    return m.group(1)


def blocks(text: str, lang: str) -> list[list[str]]:
    """The lines of each fenced ``lang`` code block in ``text``."""
    return [b.strip().splitlines() for b in re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)]


def no_make_lines() -> list[str]:
    text = section("Without make (macOS and Windows)")
    (shell,) = blocks(text, "bash")
    (powershell,) = blocks(text, "powershell")
    assert shell == powershell, "the shell and PowerShell lines of the README differ"
    return shell


def test_the_no_make_route_is_four_plain_uv_lines():
    lines = no_make_lines()
    assert [line.split()[:2] for line in lines] == [["uv", "sync"], ["uv", "run"], ["uv", "run"], ["uv", "run"]]
    assert "--locked" in lines[0].split()
    assert "helpers.check" in lines[2] and "notebooks/01_the_marketing_problem.ipynb" in lines[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_copy(dest: Path) -> Path:
    """The course as a fresh clone has it: the tracked (and new, not ignored) files, nothing built."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.mark.skipif(not UV.exists(), reason="the project's uv (.tools/bin/uv) is not bootstrapped: run `make test`")
def test_the_readme_lines_install_check_and_open_the_course(tmp_path):
    """The four lines on a clean copy; about 1-2 minutes (uv links packages from its cache)."""
    lines = no_make_lines()
    course = clean_copy(tmp_path / "rl-marketing-course")
    python = subprocess.run(["sh", str(ROOT / "tools" / "find-python")], capture_output=True, text=True, check=True).stdout.strip()
    # The attendee's terminal: uv on PATH (the installers need the internet), a Python 3.12 that
    # uv finds (UV_PYTHON stands in for one on PATH; downloads are off, so uv cannot fetch one),
    # and none of the variables `make test` sets for .venv.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").symlink_to(UV)
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_COMPILE_BYTECODE", "MAKEFLAGS", "MFLAGS",
                        "MAKELEVEL", "PYTHONPATH")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", UV_PYTHON=python, UV_PYTHON_DOWNLOADS="never",
               TQDM_DISABLE="1")
    # JupyterLab as the test needs it: its own port and token, no browser, root allowed (CI runs
    # as root), its own runtime and settings folders. Through config, so the line stays as typed.
    port, token = free_port(), secrets.token_hex(16)
    config = tmp_path / "jupyter-config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {
        "allow_root": True, "open_browser": False, "ip": "127.0.0.1", "port": port, "port_retries": 0}}))
    (config / "jupyter_server_config.py").write_text(f"c.IdentityProvider.token = {token!r}\n")
    for name in ("runtime", "settings", "workspaces"):
        (tmp_path / name).mkdir()
    env.update(JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))

    def run(line: str, timeout: float) -> str:
        out = subprocess.run(line, shell=True, cwd=course, env=env, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"`{line}` failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out.stdout  # uv's own notes go to stderr

    run(lines[0], timeout=600)
    assert (course / ".venv").is_dir(), "uv sync did not create .venv in the course's folder"
    run(lines[1], timeout=120)
    spec = json.loads((course / ".venv" / "share" / "jupyter" / "kernels" / "python3" / "kernel.json").read_text())
    assert spec["display_name"] == "Python 3 (course)"
    check = run(lines[2], timeout=600)
    assert check.strip().splitlines()[-1].startswith("Environment OK"), check[-2000:]

    lab = subprocess.Popen(lines[3], shell=True, cwd=course, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, page = time.monotonic() + 90, None
        url = f"http://127.0.0.1:{port}/lab/tree/notebooks/01_the_marketing_problem.ipynb?token={token}"
        while time.monotonic() < deadline and lab.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    page = (r.status, r.read().decode())
                break
            except OSError:
                time.sleep(1)
        assert lab.poll() is None, f"JupyterLab exited: {lab.stdout.read().decode()[-3000:]}"
        assert page is not None and page[0] == 200, "JupyterLab did not answer within 90 s"
        assert "JupyterLab" in page[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/notebooks/01_the_marketing_problem.ipynb?content=0&token={token}", timeout=10) as r:
            assert json.load(r)["type"] == "notebook"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs?token={token}", timeout=10) as r:
            specs = json.load(r)["kernelspecs"]
        assert any(s["spec"]["display_name"] == "Python 3 (course)" for s in specs.values())
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()


def torch_wheel_platforms() -> set[str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (torch,) = [p for p in lock["package"] if p["name"] == "torch"]
    names = [w["url"].rsplit("/", 1)[-1] for w in torch["wheels"] if "-cp312-cp312-" in w["url"]]
    return {n[:-4].split("-")[-1] for n in names}


def test_the_platforms_table_says_what_the_lock_holds():
    table = section("Supported platforms")
    plats = torch_wheel_platforms()
    assert any("macosx" in p and "arm64" in p for p in plats) and "locked, not tested here" in table.split("macOS arm64")[1].split("\n")[0]
    assert "win_amd64" in plats and "locked, not tested here" in table.split("Windows x86_64")[1].split("\n")[0]
    assert any("manylinux" in p and "aarch64" in p for p in plats)
    # Intel Macs: no torch wheel in the lock, and the README says so.
    assert not any("macosx" in p and "x86_64" in p for p in plats)
    assert "does not work" in table.split("macOS x86_64")[1].split("\n")[0]


#: GNU-only command flags that BSD/macOS tools do not have (or read differently).
GNU_ONLY = [r"\binstall\s+-D", r"\bsort\s+-V", r"\breadlink\s+-f", r"\bsed\s+-i\b(?!\s*'')", r"\bcp\s+(-\w*)?--parents",
            r"\bxargs\s+-r", r"\bdate\s+-d", r"\bstat\s+-c", r"\bgrep\s+-P", r"\bmktemp\s+--", r"\bdu\s+-b"]


@pytest.mark.parametrize("path", ["Makefile", "tools/find-python"])
def test_make_and_its_tools_use_posix_commands_only(path):
    text = "\n".join(line for line in (ROOT / path).read_text().splitlines() if not line.lstrip().startswith("#"))
    found = [pat for pat in GNU_ONLY if re.search(pat, text)]
    assert not found, f"{path} uses GNU-only flags: {found}"


def test_the_posix_check_finds_gnu_flags():
    assert any(re.search(p, "\tinstall -D -m 644 a b") for p in GNU_ONLY)
    assert any(re.search(p, "ls | sort -V -r") for p in GNU_ONLY)


def test_the_download_sizes_in_the_readme_are_the_locks():
    """The install table's download column, recomputed from uv.lock by tools/download-size."""
    out = subprocess.run([os.sys.executable, str(ROOT / "tools" / "download-size"), "--json"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    sizes = json.loads(out.stdout)
    gb = lambda key: f"{sizes[key] / 1000:.2f} GB"  # noqa: E731
    rows = {line.split("|")[1].strip(): line.split("|")[3].strip() for line in section("Install").splitlines()
            if line.startswith("| ") and line.count("|") == 5}
    torch_cpu = sizes["torch_pypi_windows-x86_64_cpu_wheel_MB"]
    linux_cpu = sizes["attendee_linux-x86_64_cpu_torch_route_without_torch_download_MB"]
    assert rows["Linux, no NVIDIA GPU (most laptops)"] == f"{gb('attendee_linux-x86_64_cpu_torch_route_without_torch_download_MB')} + torch ≈ {(linux_cpu + torch_cpu) / 1000:.2f} GB"
    assert rows["Linux with an NVIDIA GPU"] == gb("attendee_linux-x86_64_download_MB")
    assert rows["macOS on Apple silicon (arm64)"] == gb("attendee_macos-arm64_download_MB")
    assert rows["Windows (x86_64)"] == gb("attendee_windows-x86_64_download_MB")
    extra = sizes["developer_linux-x86_64_download_MB"] - sizes["attendee_linux-x86_64_download_MB"]
    assert f"`make test` adds {extra / 1000:.2f} GB of test tools" in section("Install").replace("\n", " ")
    assert f"Windows ({torch_cpu / 1000:.2f} GB;" in section("Install")
    # ... and the attendee e-mail of TEACHING.md says the same
    mail = re.sub(r"\s+", " ", re.sub(r"^>\s?", "", (ROOT / "TEACHING.md").read_text(), flags=re.M))
    assert f"without an NVIDIA GPU about {(linux_cpu + torch_cpu) / 1000:.2f} GB" in mail
    assert f"{gb('attendee_linux-x86_64_download_MB')} with PyPI's CUDA build" in mail
    assert f"Apple silicon {gb('attendee_macos-arm64_download_MB')}" in mail
    assert f"Windows {gb('attendee_windows-x86_64_download_MB')}" in mail


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_cpu_torch_line_of_the_readme_installs_torch_from_that_index():
    """The README's CPU route, as a dry run (`make -n -B`: PyTorch's index is not reachable here;
    the route itself was checked by hand with PyPI standing in for that index)."""
    (line,) = [b[0] for b in blocks(section("Two commands (Linux, and macOS with make)"), "bash") if "TORCH_INDEX=" in b[0]]
    assert line == "make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(line.replace("make lab", "make -n -B env").split(), cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    script = out.stdout
    assert "tools/torch-cuda-packages --uv-flags" in script  # torch and the CUDA packages skipped
    assert '--index-url "https://download.pytorch.org/whl/cpu"' in script
    assert "tools/torch-cuda-packages --torch-version" in script  # the locked version, from the index
    assert "--extra" not in script  # the attendee install: no test tools
