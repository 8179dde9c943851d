"""JupyterLab + headless Chromium for the browser tests (tests/test_browser.py).

* :class:`LabServer` starts JupyterLab with ``make lab`` itself (the Makefile's LAB_FLAGS: root
  dir, default URL, --allow-root as root, the course's settings overrides in .venv), adding only
  ``--no-browser``, a free loopback port and a token, in quick mode, and stops it with every
  process it started (kernels included), whatever happened.
* :func:`launch_chromium` drives Debian's ``/usr/bin/chromium`` through Playwright's Python
  package (headless, no sandbox, no background networking, a fresh profile); Playwright never
  downloads a browser of its own.
* :class:`NotebookPage` opens a notebook in that JupyterLab, runs all cells, finds widgets by
  their labels and reads the figures they show (PNG bytes, decoded with Pillow).
* :class:`Screenshots` numbers the screenshots of a test under ``build/screenshots/<test>/``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
VENV_JUPYTER = ROOT / ".venv" / "bin" / "jupyter"
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "sudo apt-get install chromium"
# Headless Chromium as root: no sandbox; nothing that phones home (measured traps, DEVELOPERS.md).
# Playwright adds --headless (headless=True) and --user-data-dir (the fresh profile directory that
# launch_chromium is given).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS_DIR = ROOT / "build" / "screenshots"
WORK_DIR = ROOT / "build" / "browser"  # copies of the notebooks opened in the browser (git-ignored)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


# --- JupyterLab ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """JupyterLab as ``make lab`` starts it, plus ``--no-browser``, a loopback port and a token.

    The user's own JupyterLab settings and workspaces are not read (temporary directories): the
    tests see what a fresh learner sees, and write nothing into ``~/.jupyter``.
    """

    def __init__(self, tmp_dir: Path, start_timeout_s: float = 120.0):
        self.tmp_dir = Path(tmp_dir)
        self.start_timeout_s = start_timeout_s
        self.token = secrets.token_hex(16)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path = self.tmp_dir / "jupyterlab.log"
        self._seen: dict[int, psutil.Process] = {}  # every process of the server's tree seen so far

    # -- start / stop --

    def command(self, port: int) -> list[str]:
        extra = [
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
        ]
        # -o: take .venv as it is (installing is `make test`'s job, never a test's).
        return ["make", "--no-print-directory", "-o", ".venv/.installed-course", "lab", "LAB_ARGS=" + " ".join(extra)]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        for name in ("settings", "workspaces", "runtime"):
            (self.tmp_dir / name).mkdir(parents=True, exist_ok=True)
        env.update(
            COURSE_QUICK="1",
            TQDM_DISABLE="1",
            JUPYTERLAB_SETTINGS_DIR=str(self.tmp_dir / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.tmp_dir / "workspaces"),
            JUPYTER_RUNTIME_DIR=str(self.tmp_dir / "runtime"),
        )
        return env

    def start(self) -> LabServer:
        last_error = ""
        for _attempt in range(3):  # another process may take the free port between pick and bind
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(self.command(self.port), cwd=ROOT, env=self.environment(),
                                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)  # its own process group
            atexit.register(self.stop)  # a last resort if the caller's `finally` never runs
            self._track()
            deadline = time.monotonic() + self.start_timeout_s
            while time.monotonic() < deadline:
                self._track()
                if self.proc.poll() is not None:
                    break
                try:
                    if self.api("GET", "/api/status", timeout=2).get("started"):
                        return self
                except (OSError, ValueError):
                    pass
                time.sleep(0.25)
            last_error = self.log_tail()
            self.stop()
            if "is not available" not in last_error:
                break
        raise RuntimeError(f"JupyterLab did not start with `{' '.join(self.command(self.port))}`:\n{last_error}")

    def _track(self) -> None:
        """Remember every process of the server's tree (kernels start in their own sessions)."""
        if self.proc is None:
            return
        try:
            root = psutil.Process(self.proc.pid)
            for p in [root, *root.children(recursive=True)]:
                self._seen.setdefault(p.pid, p)
        except psutil.NoSuchProcess:
            pass

    def alive(self) -> list[psutil.Process]:
        """Processes of this server (make, jupyter, kernels) still running, as far as seen."""
        self._track()
        alive = []
        for p in self._seen.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
        return alive

    def stop(self, grace_s: float = 30.0) -> list[str]:
        """Shut JupyterLab down (its kernels first), then kill whatever is left. Returns a line per
        process that had to be killed (empty when the shutdown was clean)."""
        atexit.unregister(self.stop)
        if self.proc is None:
            return []
        self._track()
        with contextlib.suppress(Exception):
            for kernel in self.api("GET", "/api/kernels", timeout=5):
                self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=20)
        with contextlib.suppress(Exception):
            self.api("POST", "/api/shutdown", timeout=5)
        if self.proc.poll() is None:  # make still runs: its process group (make, shell, jupyter) is ours
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        killed = []
        for p in self.alive():
            with contextlib.suppress(psutil.NoSuchProcess):
                killed.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
                p.kill()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        psutil.wait_procs(list(self._seen.values()), timeout=10)
        return killed

    # -- talking to it --

    def url(self, path: str = "/") -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}{path}{sep}token={self.token}"

    def api(self, method: str, path: str, body=None, timeout: float = 10.0):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


# --- Chromium --------------------------------------------------------------------------------------


@contextlib.contextmanager
def launch_chromium(playwright, profile_dir: Path, viewport=(1400, 1000)):
    """A persistent context on a fresh profile in Debian's Chromium; closed whatever happens."""
    context = playwright.chromium.launch_persistent_context(
        str(profile_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=1)
    try:
        yield context
    finally:
        context.close()


# --- screenshots -----------------------------------------------------------------------------------


class Screenshots:
    """Numbered screenshots of one test in ``build/screenshots/<name>/`` (emptied first)."""

    def __init__(self, name: str):
        self.dir = SCREENSHOTS_DIR / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.paths: list[Path] = []

    def take(self, target, step: str) -> Path:
        """Screenshot of a page (full page) or of one element (a locator)."""
        path = self.dir / f"{len(self.paths) + 1:02d}_{re.sub(r'[^a-z0-9]+', '_', step.lower()).strip('_')}.png"
        if hasattr(target, "goto"):
            target.screenshot(path=str(path))
        else:  # an element: bring it into view and let JupyterLab render it (off-screen cells are not)
            target.scroll_into_view_if_needed()
            target.page.wait_for_timeout(500)
            target.screenshot(path=str(path))
        self.paths.append(path)
        return path

    @contextlib.contextmanager
    def on_failure(self, page):
        """On an exception: one more screenshot of the page, and every screenshot path added to the
        error report."""
        try:
            yield self
        except BaseException as e:
            with contextlib.suppress(Exception):
                self.take(page, "at failure")
            e.add_note("screenshots:\n" + "\n".join(f"  {p}" for p in self.paths))
            raise


# --- figures ---------------------------------------------------------------------------------------


def png_rgb(png: bytes):
    """``(height, width, 3)`` uint8 array of a PNG."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def clip_range_width_px(png: bytes) -> float:
    """Width in pixels of the clip explorer's green clip-range band ``[1 - eps, 1 + eps]``: the
    median, over the image rows that cross it, of the count of its light-green pixels (the legend's
    small patch and the curves crossing the band barely move a median over ~300 rows)."""
    import numpy as np

    rgb = png_rgb(png).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # tab:green at alpha 0.15 on white is about (223, 241, 223)
    green = (np.abs(r - 223) <= 12) & (np.abs(g - 241) <= 12) & (np.abs(b - 223) <= 12) & (g - r >= 8)
    counts = green.sum(axis=1)
    counts = counts[counts > 0]
    return float(np.median(counts)) if counts.size else 0.0


def colored_pixels(png: bytes) -> int:
    """Pixels with a clear hue (max - min channel > 60): the lab's runs are drawn in viridis colours,
    everything else (reference lines, text, axes) in greys."""
    rgb = png_rgb(png).astype(int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 60).sum())


# --- a notebook in JupyterLab ----------------------------------------------------------------------

ERROR_MARKERS = ("Traceback (most recent call last)", "Error displaying widget")


class NotebookPage:
    """A notebook opened in JupyterLab. ``path`` is relative to the server's root (the repository)."""

    def __init__(self, page, lab: LabServer, path: str, workspace: str):
        self.page, self.lab, self.path = page, lab, path
        self.js_errors: list[str] = []  # uncaught exceptions and console errors in the page
        page.on("pageerror", lambda e: self.js_errors.append(f"uncaught: {e}"))
        page.on("console", lambda m: m.type == "error" and self.js_errors.append(f"console: {m.text}"))
        self.page.goto(lab.url(f"/lab/workspaces/{workspace}/tree/{path}"))
        self.notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first
        self.notebook.wait_for(state="visible", timeout=60_000)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)

    def wait_for_kernel_idle(self, timeout_s: float = 120.0) -> None:
        """The notebook's kernel has started and is idle (the status bar reads "<kernel> | Idle")."""
        bar = self.page.locator("#jp-main-statusbar")
        wait_until(lambda: re.search(r"Python 3 \(course\)\s*\|\s*Idle", bar.inner_text()), timeout_s,
                   f"the kernel of {self.path} is not started and idle; status bar: {bar.inner_text()!r}", 0.25)

    def run_all(self, timeout_s: float) -> float:
        """Run > Run All Cells from the menu; wait until every code cell has run (in a fresh kernel
        the last prompt then reads ``[n]:`` with n = the number of code cells; cells whose source is
        hidden show no prompt). Fails early on an error output. Returns the seconds it took."""
        page = self.page
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        t0 = time.monotonic()
        prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt")
        while True:
            texts = [t.strip() for t in prompts.all_text_contents()]  # not innerText: off-screen cells are not rendered
            shown = [t for t in texts if t]
            counts = [int(m.group(1)) for t in shown if (m := re.fullmatch(r"\[(\d+)\]:", t))]
            if texts and len(counts) == len(shown) and max(counts) >= len(texts):
                return time.monotonic() - t0
            errors = self.error_texts()
            if errors:
                raise AssertionError(f"{self.path}: error output while running all cells:\n" + "\n---\n".join(errors))
            if time.monotonic() - t0 > timeout_s:
                raise AssertionError(f"{self.path}: not every code cell ran within {timeout_s:.0f} s; prompts: {shown}")
            time.sleep(0.5)

    def error_texts(self) -> list[str]:
        """Texts on the page that show a failure: tracebacks and "Error displaying widget" (in an
        output or anywhere else, dialogs included), and a dead kernel. Read as ``textContent``:
        off-screen cells are not rendered, so their ``innerText`` is empty."""
        page = self.page
        found = [text[-3000:] for text in page.locator(".jp-OutputArea-output").all_text_contents()
                 if any(m in text for m in ERROR_MARKERS)]
        body = page.evaluate("() => Array.from(document.body.children)"
                             ".filter(e => e.tagName !== 'SCRIPT').map(e => e.textContent).join('\\n')")
        for marker in ERROR_MARKERS:
            if marker in body and not any(marker in f for f in found):
                found.append(f"the page shows {marker!r}")
        if re.search(r"\|\s*Dead\b|Kernel Restarting|kernel (has )?died", body, re.IGNORECASE):
            found.append("the kernel died")
        return found

    def widget(self, must_contain: str):
        """The outermost widget box (``.widget-vbox``) of an output that contains ``must_contain``:
        a CSS selector of something inside, found by what the learner sees, not by cell index."""
        boxes = self.page.locator(".jp-OutputArea-output .widget-vbox").filter(has=self.page.locator(must_contain))
        boxes.first.wait_for(state="attached", timeout=30_000)
        boxes.first.scroll_into_view_if_needed()  # off-screen cells are not rendered: bring it into view
        return boxes.first

    @staticmethod
    def slider(box, label: str):
        name = box.page.locator(".widget-label", has_text=re.compile(f"^{re.escape(label)}$"))
        return box.locator(".widget-slider").filter(has=name).first

    @staticmethod
    def button(box, label: str):
        return box.locator("button.jupyter-button", has_text=re.compile(f"^\\s*{re.escape(label)}\\s*$")).first

    @staticmethod
    def figure_png(box) -> bytes:
        """The PNG bytes of the figure the widget's Output shows."""
        img = box.locator(".widget-output img").first
        img.wait_for(state="attached", timeout=30_000)
        src = img.get_attribute("src") or ""
        assert src.startswith("data:image/png;base64,"), f"the widget's figure is not an inline PNG: {src[:60]!r}"
        return base64.b64decode(src.split(",", 1)[1])


def wait_until(condition, timeout_s: float, what, interval_s: float = 0.2):
    """Poll ``condition()`` until it returns something truthy; after ``timeout_s`` fail with
    ``what`` (a string, or a function giving one: what was seen last)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout_s:.0f} s: {what() if callable(what) else what}")
        time.sleep(interval_s)
