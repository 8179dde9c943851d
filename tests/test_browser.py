"""The course's widgets in a real browser: JupyterLab + Debian's Chromium, driven by Playwright.

A widget whose callbacks work from Python (tests/test_widgets.py, tests/test_epsilon_lab.py) can
still show nothing in JupyterLab: a front-end/kernel version mismatch after an upgrade, output
routed to the log, a missing extension. These tests use the page as a learner does:

1. JupyterLab starts as ``make lab`` starts it (plus ``--no-browser``, a loopback port, a token,
   quick mode), with the course's settings overrides (no news pop-up), and stops with every
   process it started, kernels included.
2. Notebook 04, all cells run: the clip-epsilon slider moved with the keyboard and by typing in
   its readout redraws the figure, and the clip-range band drawn by the kernel has the new width.
3. Notebook 05, all cells run: the epsilon lab starts empty and asks for a prediction; it trains
   a run at the defaults, then one with the epsilon set in the page and the prediction clicked
   (status line: the bands' verdict next to the prediction; figure), and Clear removes every run.
4. No traceback, no error output and no "Error displaying widget" anywhere on the page.

Each notebook is opened as a byte-identical copy in ``build/browser/``: JupyterLab autosaves
what it shows, and the committed notebooks must stay without outputs. Screenshots of every step
go to ``build/screenshots/<test>/``; a failing test lists them. Without Chromium the module is
skipped with one line saying how to install it, except under ``CI=true``, where it must run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time

import psutil
import pytest
from browser_lab import (  # tests/ is on sys.path under pytest
    CHROMIUM,
    INSTALL_HINT,
    ROOT,
    VENV_JUPYTER,
    WORK_DIR,
    LabServer,
    NotebookPage,
    Screenshots,
    colored_pixels,
    in_ci,
    launch_chromium,
    clip_range_width_px,
    wait_until,
)

NB04 = "notebooks/04_ppo_from_scratch.ipynb"
NB05 = "notebooks/05_training_the_budget_agent.ipynb"
OVERRIDES = ROOT / "jupyterlab-settings" / "overrides.json"
NEWS_PROMPT = "Would you like to get notified about official Jupyter news?"
# Run All in quick mode on 2 busy cores: 04 takes ~30 s and 05 ~2 min (fitting the quick posterior
# when no earlier test cached it); generous limits, the point is "it finishes", not its speed.
RUN_ALL_TIMEOUT_S = {NB04: 300, NB05: 600}

_missing = None
if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
    _missing = f"Chromium not found at {CHROMIUM}: install it with `{INSTALL_HINT}` to run the browser tests"
elif not VENV_JUPYTER.exists() or shutil.which("make") is None:
    _missing = "the browser tests start JupyterLab with `make lab` from .venv: run them through `make test`"
if _missing and not in_ci():
    pytest.skip(_missing, allow_module_level=True)


def _require_browser() -> None:
    if _missing:  # only under CI=true: the tests must run there
        pytest.fail(f"CI=true but {_missing}", pytrace=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab for the notebook tests; stopped whatever happens, with nothing left over."""
    _require_browser()
    server = LabServer(tmp_path_factory.mktemp("lab"))
    try:
        server.start()
        yield server
    finally:
        killed = server.stop()
        assert not killed, "JupyterLab did not shut down cleanly; killed:\n" + "\n".join(killed)
        assert server.alive() == []


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, launch_chromium(playwright, tmp_path_factory.mktemp("profile")) as context:
        yield context


@pytest.fixture
def page(chromium):
    page = chromium.new_page()
    page.set_default_timeout(30_000)
    yield page
    page.close()


def open_copy(page, lab: LabServer, notebook: str, workspace: str) -> NotebookPage:
    """Open a byte-identical copy of ``notebook`` (under build/browser/) in its own workspace."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    copy = WORK_DIR / os.path.basename(notebook)
    shutil.copyfile(ROOT / notebook, copy)
    return NotebookPage(page, lab, copy.relative_to(ROOT).as_posix(), workspace)


def assert_page_clean(nb: NotebookPage) -> None:
    """Point 4: no traceback, no error output, no "Error displaying widget" on the page, no uncaught
    JavaScript exception and no console error about widgets (the front end failing to render one);
    and no news pop-up over the figures."""
    errors = nb.error_texts()
    assert not errors, "the page shows errors:\n" + "\n---\n".join(errors)
    js = [e for e in nb.js_errors if e.startswith("uncaught:") or re.search(r"widget|model", e, re.IGNORECASE)]
    assert not js, "JavaScript errors in the page:\n" + "\n".join(js)
    if nb.js_errors:
        print("other console errors:", *nb.js_errors, sep="\n  ")
    assert NEWS_PROMPT not in nb.page.locator("body").inner_text(), "the Jupyter news pop-up is shown"


def open_and_run_all(page, lab: LabServer, notebook: str, workspace: str, shots: Screenshots) -> NotebookPage:
    """Open a copy of ``notebook``, wait for its kernel, Run All Cells and check the page is clean."""
    number = os.path.basename(notebook)[:2]
    nb = open_copy(page, lab, notebook, workspace)
    nb.wait_for_kernel_idle()
    shots.take(page, f"{number} opened, kernel idle")
    seconds = nb.run_all(RUN_ALL_TIMEOUT_S[notebook])
    print(f"notebook {number}: Run All Cells took {seconds:.1f} s")
    assert_page_clean(nb)
    return nb


def type_into_readout(page, readout, text: str) -> None:
    """Click a slider's readout, replace its text by ``text`` and press Enter; wait until it shows it."""
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    want = f"{float(text):.2f}"
    wait_for_text(readout, want, f"the readout after typing {text}")


def wait_for_text(locator, want: str, what: str, timeout_s: float = 10.0) -> None:
    wait_until(lambda: locator.text_content() == want, timeout_s,
               lambda: f"{what} reads {locator.text_content()!r}, not {want!r}")


def new_figure(nb: NotebookPage, box, previous: bytes, what: str, timeout_s: float = 30.0) -> bytes:
    """The widget's figure once it differs from ``previous`` (PNG bytes)."""
    return wait_until(lambda: (png := nb.figure_png(box)) != previous and png, timeout_s,
                      f"the figure did not change {what}")


def shutdown_kernels(lab: LabServer) -> None:
    """Free the kernel's memory before the next notebook (the server stays up)."""
    for kernel in lab.api("GET", "/api/kernels"):
        lab.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)


# --- 1. JupyterLab as `make lab` starts it, stopped with nothing left over --------------------------


def test_lab_starts_like_make_lab_with_the_news_off_and_stops_without_leftovers(tmp_path):
    _require_browser()
    server = LabServer(tmp_path)
    try:
        server.start()
        # what `make lab` serves: the whole repository, notebook 01 as the landing page
        listing = server.api("GET", "/api/contents/notebooks")
        assert {"04_ppo_from_scratch.ipynb", "05_training_the_budget_agent.ipynb"} <= {f["name"] for f in listing["content"]}
        lab_proc = next(p for p in server.alive() if any("jupyter-lab" in a for a in p.cmdline()))
        cmdline = lab_proc.cmdline()
        assert f"--ServerApp.root_dir={ROOT}" in cmdline and "--no-browser" in cmdline
        assert "--LabApp.default_url=/lab/tree/notebooks/01_the_marketing_problem.ipynb" in cmdline
        assert lab_proc.environ().get("COURSE_QUICK") == "1" and lab_proc.environ().get("TQDM_DISABLE") == "1"
        # the course's overrides (installed into .venv by the Makefile) are the served defaults
        shipped = json.loads(OVERRIDES.read_text())["@jupyterlab/apputils-extension:notification"]
        schema = server.api("GET", "/lab/api/settings/@jupyterlab/apputils-extension:notification")["schema"]
        served = {key: schema["properties"][key]["default"] for key in shipped}
        assert served == shipped == {"fetchNews": "false", "checkForUpdates": False}, (
            f"JupyterLab serves {served}; run `make env` to install {OVERRIDES.relative_to(ROOT)} into .venv")
        # a kernel, so that stopping must also end a process in a session of its own
        server.api("POST", "/api/kernels", {"name": "python3"})
        wait_until(lambda: any("ipykernel" in " ".join(p.cmdline()) for p in server.alive()),
                   60, "the kernel process did not appear")
        processes = server.alive()
        assert len(processes) >= 3  # make, jupyter-lab, the kernel (and a shell in between)
    finally:
        killed = server.stop()
    assert killed == [], "JupyterLab did not shut down cleanly; killed:\n" + "\n".join(killed)
    assert server.alive() == []
    assert not psutil.pid_exists(server.proc.pid) or psutil.Process(server.proc.pid).status() == psutil.STATUS_ZOMBIE
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", server.port)) != 0, f"port {server.port} still accepts connections"


# --- 2. notebook 04: the clip-epsilon explorer ---------------------------------------------------------


def test_clip_explorer_follows_the_keyboard_and_the_readout(lab, page):
    shots = Screenshots("clip_explorer")
    with shots.on_failure(page):
        nb = open_and_run_all(page, lab, NB04, "clip-explorer", shots)

        box = nb.widget(".widget-toggle-buttons")  # the explorer: the only widget with the sign toggle
        slider = nb.slider(box, "clip ε")
        handle, readout = slider.locator(".noUi-handle"), slider.locator(".widget-readout")

        def handle_value() -> float:
            return float(handle.get_attribute("aria-valuenow"))

        assert readout.text_content() == "0.20" and handle_value() == pytest.approx(0.2)
        start = nb.figure_png(box)
        width_020 = clip_range_width_px(start)
        assert width_020 > 20, f"no clip-range band found in the explorer's figure ({width_020} px)"
        shots.take(box, "explorer at eps 0.20")

        seen = {}

        def redrawn_for(eps: float, previous: bytes):
            """The figure changed and its band is eps / 0.2 times as wide (the kernel drew this eps)."""
            png = nb.figure_png(box)
            seen.update(changed=png != previous, ratio=clip_range_width_px(png) / width_020, want=eps / 0.2)
            return png if seen["changed"] and abs(seen["ratio"] - seen["want"]) < 0.1 * seen["want"] else None

        def not_redrawn(eps: float):
            return lambda: (f"no figure for eps = {eps:.2f}: image changed: {seen['changed']}, clip-range band "
                            f"{seen['ratio']:.2f} x as wide as at 0.20 (want {seen['want']:.2f} x)")

        # keyboard: focus the handle, five steps of 0.01 to the right
        handle.focus()
        for _ in range(5):
            handle.press("ArrowRight")
        wait_for_text(readout, "0.25", "the readout after 5 x ArrowRight")
        assert handle_value() == pytest.approx(0.25, abs=0.05)  # aria-valuenow has one decimal
        by_keys = wait_until(lambda: redrawn_for(0.25, start), 30, not_redrawn(0.25))
        shots.take(box, "explorer after arrow keys eps 0.25")

        # typing in the readout
        type_into_readout(page, readout, "0.4")
        assert handle_value() == pytest.approx(0.4)
        wait_until(lambda: redrawn_for(0.40, by_keys), 30, not_redrawn(0.40))
        shots.take(box, "explorer after typing eps 0.40")
        shots.take(page, "page at the end")
        assert_page_clean(nb)
    shutdown_kernels(lab)


# --- 3. notebook 05: the epsilon lab ---------------------------------------------------------------


def test_epsilon_lab_trains_a_run_with_the_page_epsilon_and_clears(lab, page):
    shots = Screenshots("epsilon_lab")
    with shots.on_failure(page):
        nb = open_and_run_all(page, lab, NB05, "epsilon-lab", shots)

        box = nb.widget("button.jupyter-button:has-text('Train')")
        status = box.locator(".widget-html-content").first
        train, clear = nb.button(box, "Train"), nb.button(box, "Clear")
        readout = nb.slider(box, "clip ε").locator(".widget-readout")
        # no notebook cell drives the lab: after Run All it is empty and asks for a prediction
        assert status.text_content().startswith("No run yet.") and "predict" in status.text_content(), status.text_content()
        empty = nb.figure_png(box)
        assert colored_pixels(empty) < 500, "the lab's figure shows run curves before any press of Train"
        shots.take(box, "lab empty after the notebook")

        def press_train(run: int, eps: str, timeout_s: float = RUN_ALL_TIMEOUT_S[NB05] / 2):
            t0 = time.monotonic()
            train.click()
            done = wait_until(lambda: re.search(rf"Run {run}: ε={re.escape(eps)}, .*% of the optimum.*", status.text_content()),
                              timeout_s, lambda: f"no run {run} within {timeout_s:.0f} s; status: {status.text_content()!r}", 0.5)
            print(f"Train: '{done.group(0)}' after {time.monotonic() - t0:.1f} s")
            return done.group(0)

        press_train(1, "0.20")  # the defaults
        first = new_figure(nb, box, empty, "after the first Train")
        assert colored_pixels(first) > 500
        type_into_readout(page, readout, "0.5")
        nb.button(box, "lower").click()  # the prediction, before the press
        text = press_train(2, "0.50")
        # the verdict against run 1 and the prediction graded by it (quick mode: on the course's machine the loose clip's
        # band ends below, but a small effect can read otherwise on another CPU, so any verdict counts here)
        assert re.search(r"(whole band is (below|above)|overlaps) run 1's", text), text
        assert re.search(r"You predicted 'lower': (right\.|the bands say '(higher|no effect shown)')", text), text
        trained = new_figure(nb, box, first, "after the second Train")
        shots.take(box, "lab after train eps 0.5")

        clear.click()
        wait_until(lambda: status.text_content().startswith("Cleared."), 30,
                   lambda: f"status after Clear: {status.text_content()!r}")
        cleared = new_figure(nb, box, trained, "after Clear")
        assert colored_pixels(cleared) < 0.02 * colored_pixels(trained), "run curves still drawn after Clear"
        assert train.is_enabled() and clear.is_enabled()
        shots.take(box, "lab after clear")
        shots.take(page, "page at the end")
        assert_page_clean(nb)
    shutdown_kernels(lab)
