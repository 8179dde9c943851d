"""Run the course's notebooks headless: the one runner shared by the tests and ``make course``.

* ``execute_notebook(path, quick=True)`` is what ``tests/test_notebooks.py`` uses: a fresh
  kernel, cwd = ``notebooks/``, ``COURSE_QUICK=1`` so every notebook shrinks its work.
* ``python -m helpers.course`` (``make course``) executes every ``notebooks/[0-9]*.ipynb`` in
  order in full mode and writes each executed notebook, plus an HTML rendering, to
  ``build/course/``. It stops at the first failure, shows the failing cell and exits non-zero.

The runner never writes into ``notebooks/``: the committed notebooks stay without outputs.
``python -m helpers.course --student`` (``make student``) writes solution-free copies of the
notebooks into ``build/student/`` for handing out (:func:`write_student_copies`).

A hang must be a readable failure, never a stuck CI: every cell has a time limit
(:data:`CELL_TIMEOUT_S`), and when a cell runs past it the runner first makes the kernel write
every thread's Python stack (``faulthandler``, registered at kernel start-up on ``SIGUSR1``),
prints it, then fails with ``CellTimeoutError`` (its ``kernel_stacks`` holds the dump). And a
cell the kernel reports done whose execute_reply is lost (seen here with ipykernel 7) costs
:data:`REPLY_GRACE_S` seconds, not the cell's time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from helpers.data import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
BUILD_DIR = ROOT / "build" / "course"
KERNEL_NAME = "python3"
#: Per-cell limit in seconds: generous, because a full-mode fit or training run is one cell.
CELL_TIMEOUT_S = 900
#: Seconds the runner waits for a cell's execute_reply after the kernel reported the cell done
#: ("idle" on iopub) before it goes on without it (see ``CourseClient._async_poll_for_reply``).
#: A healthy kernel sends the reply within milliseconds of "idle".
REPLY_GRACE_S = 30.0
#: The signal on which the kernel dumps every thread's stack (None where there is no SIGUSR1).
STACK_SIGNAL = getattr(signal, "SIGUSR1", None)


def course_notebooks(directory: str | os.PathLike = NOTEBOOKS_DIR) -> list[Path]:
    """The course's notebooks, ``[0-9]*.ipynb`` in ``directory``, in filename order."""
    return sorted(Path(directory).glob("[0-9]*.ipynb"), key=lambda p: p.name)


@contextlib.contextmanager
def _course_environment(quick: bool):
    """Set the variables the kernel must inherit; restore the parent's afterwards.

    The kernel is a child process, so it inherits ``os.environ`` at start-up. Quick mode sets
    ``COURSE_QUICK=1``; full mode removes it (a stray ``COURSE_QUICK`` in the caller's shell must
    not silently shrink ``make course``). ``TQDM_DISABLE=1`` in both: nobody watches a headless
    run, and tqdm's widget bars under nbclient can fail on display ids.
    Not thread-safe (it edits the process environment); the runner executes one notebook at a time.
    """
    wanted = {"COURSE_QUICK": "1" if quick else None, "TQDM_DISABLE": "1"}
    saved = {k: os.environ.get(k) for k in wanted}
    try:
        for k, v in wanted.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kernel_manager(socket_dir: str):
    """A manager for a fresh ``python3`` kernel that talks over Unix sockets in ``socket_dir``.

    IPC sockets keep the kernel local (no TCP ports, nothing for other users on the machine to
    connect to, and no "running over TCP without encryption" warning in every run). Windows has
    no IPC transport, so there the kernel uses the default TCP on localhost.
    """
    from jupyter_client.manager import AsyncKernelManager  # what nbclient uses by default

    if os.name == "nt":
        return AsyncKernelManager(kernel_name=KERNEL_NAME)
    return AsyncKernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=os.path.join(socket_dir, "kernel"))


def _stack_dump_setup(path: Path) -> str:
    """One line the kernel runs at start-up (IPython ``exec_lines``: no execution count, no name
    left in the user's namespace): on :data:`STACK_SIGNAL`, ``faulthandler`` writes every
    thread's Python stack to ``path``. It works even when the main thread is stuck in C code."""
    return (f"__import__('faulthandler').register(__import__('signal').SIGUSR1, "
            f"file=open({str(path)!r}, 'w'), all_threads=True)")


def _reply_from_outputs(msg_id: str, cell) -> dict:
    """A stand-in for a lost ``execute_reply``: status from the cell's outputs (an error is also an output)."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    content = {"status": "ok", "execution_count": cell.get("execution_count")}
    if errors:
        content.update(status="error", ename=errors[-1]["ename"], evalue=errors[-1]["evalue"],
                       traceback=errors[-1]["traceback"])
    return {"msg_type": "execute_reply", "header": {}, "parent_header": {"msg_id": msg_id}, "metadata": {},
            "content": content}


def _client_class():
    """``nbclient.NotebookClient`` that, on a cell timeout, collects the kernel's stacks first."""
    from nbclient import NotebookClient
    from nbclient.util import ensure_async

    class CourseClient(NotebookClient):
        stack_file: Path | None = None
        kernel_stacks: str = ""
        lost_replies: int = 0  # cells whose execute_reply never came (0 in a healthy run)
        _idle_at: float | None = None  # when the kernel reported the current cell done

        def process_message(self, msg, cell, cell_index):  # only messages about the current cell come here
            if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                self._idle_at = time.monotonic()
            return super().process_message(msg, cell, cell_index)

        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            self._idle_at = None
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

        async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
            # TRAP (seen here: notebook 04, right after the cell that displays the clip explorer, in
            # about one run in five; ipykernel 7.4, nbclient 0.11, Python 3.12 and 3.13): the kernel
            # runs the cell to the end and reports "idle", but its execute_reply never arrives, and
            # nbclient waits for the whole cell timeout (the kernel, asked by another client, had
            # executed that cell and nothing after it). The reply says only ok/error, and an error
            # also comes on iopub: so once the kernel has been idle for this cell REPLY_GRACE_S
            # seconds without a reply, go on with what iopub delivered, and say so on stderr.
            poll = asyncio.ensure_future(
                super()._async_poll_for_reply(msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive))
            try:
                while True:
                    done, _ = await asyncio.wait({poll}, timeout=min(1.0, REPLY_GRACE_S))
                    if poll in done:
                        return poll.result()
                    if self._idle_at is not None and time.monotonic() - self._idle_at >= REPLY_GRACE_S:
                        break
            except asyncio.CancelledError:  # nbclient cancels this task when the kernel dies
                poll.cancel()
                raise
            poll.cancel()
            task_poll_kernel_alive.cancel()
            self.lost_replies += 1
            print(f"cell {cell.get('execution_count')}: the kernel finished it {REPLY_GRACE_S:.0f} s ago but its "
                  f"execute_reply never came; going on with its outputs (lost reply {self.lost_replies})",
                  file=sys.stderr, flush=True)
            return _reply_from_outputs(msg_id, cell)

        async def _async_handle_timeout(self, timeout, cell=None):
            self.kernel_stacks = await self._dump_kernel_stacks()
            return await super()._async_handle_timeout(timeout, cell)

        async def _dump_kernel_stacks(self, wait_s: float = 10.0) -> str:
            if STACK_SIGNAL is None or self.stack_file is None or self.km is None:
                return "(no stack dump on this platform)"
            try:
                await ensure_async(self.km.signal_kernel(STACK_SIGNAL))
            except Exception as exc:  # the kernel may be gone already
                return f"(could not signal the kernel: {type(exc).__name__}: {exc})"
            text, deadline = "", time.monotonic() + wait_s
            while time.monotonic() < deadline:  # wait until the dump is written and stops growing
                await asyncio.sleep(0.25)
                new = self.stack_file.read_text() if self.stack_file.exists() else ""
                if new and new == text:
                    break
                text = new
            return text or f"(the kernel wrote no stacks within {wait_s:.0f} s)"

    return CourseClient


def execute_notebook(
    path: str | os.PathLike,
    quick: bool,
    timeout: int = CELL_TIMEOUT_S,
    output_path: str | os.PathLike | None = None,
    cwd: str | os.PathLike = NOTEBOOKS_DIR,
):
    """Execute the notebook at ``path`` top to bottom in a fresh ``python3`` kernel.

    Args:
        path: the ``.ipynb`` to run (it is read, never modified).
        quick: ``True`` sets ``COURSE_QUICK=1`` for the kernel (CI / tests); ``False`` is full mode.
        timeout: per-cell limit in seconds.
        output_path: if given, the executed notebook is written there (atomically).
        cwd: the kernel's working directory; the course's notebooks expect ``notebooks/``.

    Returns:
        The executed ``nbformat.NotebookNode``.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; ``str(err)`` shows the cell's
            source and the traceback.
        nbclient.exceptions.CellTimeoutError / DeadKernelError: a cell ran past ``timeout`` / the
            kernel died. All three carry ``err.notebook``, the notebook executed so far; the kernel
            is shut down in every case. A timeout also carries ``err.kernel_stacks``, every
            thread's stack in the kernel when the limit passed (printed to stderr as well).
    """
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    with _course_environment(quick), tempfile.TemporaryDirectory(prefix="course-kernel-") as sockets:
        stack_file = Path(sockets) / "kernel-stacks.txt"
        client = _client_class()(
            nb,
            km=_kernel_manager(sockets),
            timeout=timeout,
            kernel_name=KERNEL_NAME,
            resources={"metadata": {"path": str(cwd)}},
            extra_arguments=[f"--IPKernelApp.exec_lines={_stack_dump_setup(stack_file)}"] if STACK_SIGNAL else [],
        )
        client.stack_file = stack_file
        try:
            # TRAP: nbclient only shuts down kernels it created itself; this one we created, so
            # ask for the shutdown explicitly or every call leaks a kernel process.
            client.execute(cleanup_kc=True)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
            err.notebook = nb  # executed up to the failing cell (its outputs included)
            if isinstance(err, CellTimeoutError):
                err.kernel_stacks = client.kernel_stacks
                print(f"{Path(path).name}: a cell ran past its {timeout} s limit; every thread of the kernel was at:\n"
                      f"{client.kernel_stacks}", file=sys.stderr, flush=True)
            raise
    if output_path is not None:
        atomic_write_text(output_path, nbformat.writes(nb))
    return nb


def write_html(nb, html_path: str | os.PathLike) -> None:
    """Render an executed notebook as a standalone HTML page (nbconvert), atomically."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    atomic_write_text(html_path, body)


def run_course(notebooks: list[Path], out_dir: str | os.PathLike = BUILD_DIR, quick: bool = False, timeout: int = CELL_TIMEOUT_S) -> int:
    """Execute ``notebooks`` in order into ``out_dir`` (.ipynb + .html); 0 on success, 1 on the first failure."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    out_dir = Path(out_dir)
    mode = "quick" if quick else "full"
    if not notebooks:
        print(f"no notebooks to run in {NOTEBOOKS_DIR}", file=sys.stderr)
        return 1
    total = time.perf_counter()
    for k, path in enumerate(notebooks, 1):
        print(f"[{k}/{len(notebooks)}] {path.name} ({mode} mode) ...", end=" ", flush=True)
        start = time.perf_counter()
        try:
            nb = execute_notebook(path, quick=quick, timeout=timeout)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
            print(f"FAILED after {time.perf_counter() - start:.1f} s\n", flush=True)
            print(err, file=sys.stderr)
            partial = getattr(err, "notebook", None)
            if partial is not None:
                failed = out_dir / f"{path.stem}.failed.ipynb"
                atomic_write_text(failed, nbformat.writes(partial))
                print(f"\nthe notebook as executed up to the failure: {failed}", file=sys.stderr)
            return 1
        atomic_write_text(out_dir / path.name, nbformat.writes(nb))
        write_html(nb, out_dir / f"{path.stem}.html")
        (out_dir / f"{path.stem}.failed.ipynb").unlink(missing_ok=True)  # a stale failure from an earlier run
        print(f"ok in {time.perf_counter() - start:.1f} s", flush=True)
    print(f"all {len(notebooks)} notebooks ran in {time.perf_counter() - total:.1f} s; outputs in {out_dir}")
    return 0


# --- student copies (`make student`) ---------------------------------------------------------

#: Where ``make student`` writes the solution-free notebooks.
STUDENT_DIR = ROOT / "build" / "student"
#: Cells with this tag hold an exercise's solution (hidden in the course, removed for students).
SOLUTION_TAG = "solution"


def is_solution(cell) -> bool:
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def student_copy(nb):
    """``nb`` without its solution cells, outputs and execution counts (a new notebook).

    The learner cells (``answer_N = None``) and the checks stay: in a student copy every check
    says "not answered yet" until the learner answers, and the notebook still runs top to bottom.
    """
    import copy

    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if not is_solution(c)]
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return out


def write_student_copies(out_dir: str | os.PathLike = STUDENT_DIR, notebooks: list[Path] | None = None) -> list[Path]:
    """Write a :func:`student_copy` of every course notebook into ``out_dir`` (atomically).

    The copies read their data through ``helpers.data`` (absolute paths), so they run from any
    folder: hand out the folder, or copy its notebooks over ``notebooks/`` in the learners'
    clones (TEACHING.md).
    """
    import nbformat

    written = []
    for path in notebooks or course_notebooks():
        target = Path(out_dir) / Path(path).name
        atomic_write_text(target, nbformat.writes(student_copy(nbformat.read(path, as_version=4))))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.course [NOTEBOOK ...] [--quick] [--out DIR] [--student]``; default: all, full mode."""
    parser = argparse.ArgumentParser(prog="python -m helpers.course", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/[0-9]*.ipynb in order)")
    parser.add_argument("--quick", action="store_true", help="COURSE_QUICK=1, as the tests run them")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default: {BUILD_DIR.relative_to(ROOT)}, or {STUDENT_DIR.relative_to(ROOT)} with --student)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="per-cell limit in seconds")
    parser.add_argument("--student", action="store_true", help="write solution-free copies instead of running (make student)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or course_notebooks()
    if args.student:
        for path in write_student_copies(args.out or STUDENT_DIR, notebooks):
            print(f"wrote {path}")
        return 0
    return run_course(notebooks, out_dir=args.out or BUILD_DIR, quick=args.quick, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
