"""Run the course's notebooks headless: the one runner shared by the tests and ``make course``.

* ``execute_notebook(path, quick=True)`` is what ``tests/test_notebooks.py`` uses: a fresh
  kernel, cwd = ``notebooks/``, ``COURSE_QUICK=1`` so every notebook shrinks its work.
* ``python -m helpers.course`` (``make course``) executes every ``notebooks/[0-9]*.ipynb`` in
  order in full mode into ``build/course/`` (each executed notebook plus an HTML rendering); it
  stops at the first failure, shows the failing cell and exits non-zero. The runner never writes
  into ``notebooks/``: the committed notebooks stay without outputs.
* ``--student`` (``make student``) writes solution-free copies into ``build/student/``
  (:func:`write_student_copies`); ``--nbgrader`` lays the course out for nbgrader.

A hang is a readable failure, never a stuck CI: a cell past :data:`CELL_TIMEOUT_S` fails with every
kernel thread's stack (:func:`execute_notebook`); a lost execute_reply costs :data:`REPLY_GRACE_S`,
not the time limit, and more than :data:`MAX_LOST_REPLIES` in one notebook fail it.
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
#: A healthy kernel sends the reply within milliseconds of "idle". A safety net: a lost reply
#: costs this, not the cell's time limit, and is counted.
REPLY_GRACE_S = 30.0
#: Lost replies one notebook may have before it fails (:class:`LostRepliesError`). Why 0: the one
#: loss ever seen (notebook 04, after the clip explorer's cell, about one quick run in three) was
#: the runner's own client missing a reply that had arrived, now fixed (:func:`_kernel_client_class`).
#: Another lost reply is a new fault to diagnose, not a glitch to tolerate, and a run that goes on
#: with outputs it can no longer trust must not pass as "ok".
MAX_LOST_REPLIES = 0
#: Where the runner records the count in an executed notebook (``nb.metadata``).
RUNNER_METADATA = "course_runner"
#: The signal on which the kernel dumps every thread's stack (None where there is no SIGUSR1).
STACK_SIGNAL = getattr(signal, "SIGUSR1", None)


class LostRepliesError(RuntimeError):
    """More than the allowed lost execute_replies in one notebook; ``notebook`` (executed) and
    ``lost_replies`` (the count) are attached."""

    def __init__(self, message: str, notebook=None, lost_replies: int = 0):
        super().__init__(message)
        self.notebook, self.lost_replies = notebook, lost_replies


def lost_replies(nb) -> int:
    """How many cells of the executed notebook ``nb`` lost their execute_reply (0 if it was not run by this runner)."""
    return int(nb.get("metadata", {}).get(RUNNER_METADATA, {}).get("lost_replies", 0))


def course_notebooks(directory: str | os.PathLike = NOTEBOOKS_DIR) -> list[Path]:
    """The course's notebooks, ``[0-9]*.ipynb`` in ``directory``, in filename order."""
    return sorted(Path(directory).glob("[0-9]*.ipynb"), key=lambda p: p.name)


@contextlib.contextmanager
def _course_environment(quick: bool):
    """Set the variables the kernel must inherit; restore the parent's afterwards.

    The kernel is a child process, so it inherits ``os.environ`` at start-up. Quick mode sets
    ``COURSE_QUICK=1``; full mode removes it (a stray ``COURSE_QUICK`` in the caller's shell must
    not silently shrink ``make course``). ``TQDM_DISABLE=1`` in both: nobody watches a headless
    run, and tqdm's widget bars under nbclient can fail on display ids. ``COURSE_STRICT=1`` in both: a
    wrong answer to an exercise raises (``helpers.exercises.check``) where in a learner's kernel it prints.
    Not thread-safe (it edits the process environment); the runner executes one notebook at a time.
    """
    wanted = {"COURSE_QUICK": "1" if quick else None, "TQDM_DISABLE": "1", "COURSE_STRICT": "1"}
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

    client = _kernel_client_class()
    if os.name == "nt":
        return AsyncKernelManager(kernel_name=KERNEL_NAME, client_factory=client)
    return AsyncKernelManager(kernel_name=KERNEL_NAME, client_factory=client, transport="ipc",
                              ip=os.path.join(socket_dir, "kernel"))


def _kernel_client_class():
    """``AsyncKernelClient`` whose shell channel cannot lose a reply to its own sends.

    TRAP (the lost execute_reply of notebook 04, after the clip explorer's cell; issue 18/19):
    nbclient imitates the front end of an ``ipywidgets.Output``: each output the kernel routes into
    one (the explorer's figure) is synced back with a ``comm_msg`` on the *shell* channel, sent from
    nbclient's iopub task while its reply task awaits the cell's execute_reply on that same socket
    (``socket.poll``). ``jupyter_client.Session.send`` sends through a plain (synchronous) shadow of
    the asyncio socket, and libzmq's send processes the socket's pending commands: when the reply
    has just arrived, the send consumes the edge-triggered ``ZMQ_FD`` wake-up of the reply,
    bypassing pyzmq's asyncio bookkeeping, which re-checks only after its own sends. The reply then
    sits in the socket and the waiting poll never wakes (nbclient issue 312; the mechanism of pyzmq
    issue 1203, fixed there for pyzmq's own sends). Evidence: a probe found the lost reply waiting
    in the socket (``EVENTS`` had ``POLLIN``, the poll still pending), and
    ``tests/test_no_hang.py`` replays the race. So after every send, ask the asyncio socket for
    its ``EVENTS``: pyzmq then schedules the pending poll if a message is waiting.
    """
    import zmq
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.channels import AsyncZMQSocketChannel
    from traitlets import Type

    class WakingShellChannel(AsyncZMQSocketChannel):
        def send(self, msg):
            super().send(msg)
            self.socket.get(zmq.EVENTS)  # zmq.asyncio: re-checks and wakes a pending recv/poll

    class CourseKernelClient(AsyncKernelClient):
        shell_channel_class = Type(WakingShellChannel)

    return CourseKernelClient


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
            # Safety net: when the kernel reports the cell done ("idle") but its execute_reply is
            # not received, nbclient would wait for the whole cell timeout. (The one cause seen,
            # notebook 04's clip explorer, was the client missing a reply that had arrived: fixed in
            # _kernel_client_class.) The reply says only ok/error, and an error also comes on iopub:
            # so once the kernel has been idle for this cell REPLY_GRACE_S seconds without a reply,
            # go on with what iopub delivered, count it, and say so on stderr.
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
    max_lost_replies: int | None = MAX_LOST_REPLIES,
):
    """Execute the notebook at ``path`` top to bottom in a fresh ``python3`` kernel.

    Args:
        path: the ``.ipynb`` to run (it is read, never modified).
        quick: ``True`` sets ``COURSE_QUICK=1`` for the kernel (CI / tests); ``False`` is full mode.
        timeout: per-cell limit in seconds.
        output_path: if given, the executed notebook is written there (atomically).
        cwd: the kernel's working directory; the course's notebooks expect ``notebooks/``.
        max_lost_replies: more lost execute_replies than this fail the notebook (None: no limit).

    Returns:
        The executed ``nbformat.NotebookNode``; :func:`lost_replies` reads how many of its cells'
        execute_replies were lost (``nb.metadata["course_runner"]["lost_replies"]``).

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; ``str(err)`` shows the cell's
            source and the traceback.
        nbclient.exceptions.CellTimeoutError / DeadKernelError: a cell ran past ``timeout`` / the
            kernel died. All three carry ``err.notebook``, the notebook executed so far; the kernel
            is shut down in every case. A timeout also carries ``err.kernel_stacks``, every
            thread's stack in the kernel when the limit passed (printed to stderr as well).
        LostRepliesError: more than ``max_lost_replies`` cells lost their execute_reply. Every
            error above carries ``err.lost_replies`` too.
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
            nb.metadata[RUNNER_METADATA] = {"lost_replies": client.lost_replies}
            err.notebook = nb  # executed up to the failing cell (its outputs included)
            err.lost_replies = client.lost_replies
            if isinstance(err, CellTimeoutError):
                err.kernel_stacks = client.kernel_stacks
                print(f"{Path(path).name}: a cell ran past its {timeout} s limit; every thread of the kernel was at:\n"
                      f"{client.kernel_stacks}", file=sys.stderr, flush=True)
            raise
        nb.metadata[RUNNER_METADATA] = {"lost_replies": client.lost_replies}
    if max_lost_replies is not None and client.lost_replies > max_lost_replies:
        raise LostRepliesError(f"{Path(path).name}: {client.lost_replies} cells lost their execute_reply, more than "
                               f"{max_lost_replies} (MAX_LOST_REPLIES): the kernel connection is degraded; its outputs "
                               "are not trusted", notebook=nb, lost_replies=client.lost_replies)
    if output_path is not None:
        atomic_write_text(output_path, nbformat.writes(nb))
    return nb


def _replies(n: int) -> str:
    return f"{n} lost {'reply' if n == 1 else 'replies'}"


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
        except (CellExecutionError, CellTimeoutError, DeadKernelError, LostRepliesError) as err:
            print(f"FAILED after {time.perf_counter() - start:.1f} s, {_replies(getattr(err, 'lost_replies', 0))}\n", flush=True)
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
        print(f"ok in {time.perf_counter() - start:.1f} s, {_replies(lost_replies(nb))}", flush=True)
    print(f"all {len(notebooks)} notebooks ran in {time.perf_counter() - total:.1f} s; outputs in {out_dir}")
    return 0


# --- student copies (`make student`) ---------------------------------------------------------

#: Where ``make student`` writes the solution-free notebooks.
STUDENT_DIR = ROOT / "build" / "student"
#: nbgrader's markers, as the course's notebooks use them (``nbgrader_config.py`` at the root names
#: the same stub, so ``make student`` and nbgrader's ``generate_assignment`` hand out the same cells):
#: a solution region is replaced by :data:`CODE_STUB` (indented like its first marker), a hidden
#: tests region is removed.
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
#: A comment, not nbgrader's default ``raise NotImplementedError()``: a value exercise's region
#: follows ``answer_1 = None`` at the top level of a cell, where a raise would stop Run All; a
#: function's region follows its docstring, so the stub function returns None, which
#: ``helpers.exercises`` reads as "not answered yet".
CODE_STUB = "# YOUR CODE HERE"
#: Cells with this tag hold an exercise's solution in the older form (a whole hidden cell,
#: removed for students); converted notebooks use nbgrader's regions instead.
SOLUTION_TAG = "solution"


def is_solution(cell) -> bool:
    """A whole-cell solution of the older form (tag ``solution``)."""
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def clear_regions(source: str, where: str = "cell") -> str:
    """``source`` with every solution region replaced by :data:`CODE_STUB` and every hidden-tests
    region removed (nbgrader's ``ClearSolutions`` + ``ClearHiddenTests``, with this course's stub).

    Raises ``ValueError`` naming ``where`` and the line for a nested, unopened or unclosed region.
    """
    out, region = [], None  # region: the marker that opened the current region
    for k, line in enumerate(source.split("\n"), 1):
        text = line.strip()
        if text in (BEGIN_SOLUTION, BEGIN_HIDDEN_TESTS):
            if region is not None:
                raise ValueError(f"{where}, line {k}: {text!r} inside a region opened by {region!r}")
            region = text
            if text == BEGIN_SOLUTION:
                indent = line[: len(line) - len(line.lstrip())]
                out += [indent + stub for stub in CODE_STUB.split("\n")]
        elif text in (END_SOLUTION, END_HIDDEN_TESTS):
            opener = BEGIN_SOLUTION if text == END_SOLUTION else BEGIN_HIDDEN_TESTS
            if region != opener:
                raise ValueError(f"{where}, line {k}: {text!r} without {opener!r} before it")
            region = None
        elif region is None:
            out.append(line)
    if region is not None:
        raise ValueError(f"{where}: {region!r} is never closed")
    return "\n".join(out)


def student_copy(nb, where: str = "notebook"):
    """``nb`` as a learner gets it (a new notebook): solution regions replaced by the stub, hidden
    tests removed, older-form solution cells dropped, no outputs or execution counts.

    The learner cells (``answer_N = None``, function stubs) and the checks stay: in a student copy
    every check says "not answered yet" until the learner answers, and the notebook still runs
    top to bottom.
    """
    import copy

    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if not is_solution(c)]
    for i, cell in enumerate(out.cells):
        if cell.cell_type == "code":
            cell.source = clear_regions(cell.source, f"{where}, cell {i}")
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
        atomic_write_text(target, nbformat.writes(student_copy(nbformat.read(path, as_version=4), Path(path).name)))
        written.append(target)
    return written


#: Where ``python -m helpers.course --nbgrader`` lays out the course for nbgrader.
NBGRADER_DIR = ROOT / "build" / "nbgrader"
#: The assignment's name in that layout (one assignment: the whole course).
NBGRADER_ASSIGNMENT = "course"
NBGRADER_CONFIG = f"""\
# nbgrader's settings for this course (written by python -m helpers.course --nbgrader).
c = get_config()
c.CourseDirectory.course_id = "rl-marketing-course"
# The course's stub: a comment, so a student copy still runs top to bottom (helpers/course.py).
c.ClearSolutions.code_stub = {{"python": {CODE_STUB!r}}}
# A full-mode notebook fits or trains in one cell: the course runner's limit per cell.
c.ExecutePreprocessor.timeout = {CELL_TIMEOUT_S}
"""


def write_nbgrader_course(out_dir: str | os.PathLike = NBGRADER_DIR, notebooks: list[Path] | None = None) -> Path:
    """Lay out the course for nbgrader in ``out_dir``: ``nbgrader_config.py`` and the instructor's
    notebooks in ``source/course/`` (solution regions and hidden tests as committed, nbgrader's
    cell metadata added by :func:`with_nbgrader_metadata`, older-form solution cells dropped).
    Then, in ``out_dir``::

        nbgrader generate_assignment course     # release/course/: the student copies
        nbgrader autograde course               # grades submitted/<student>/course/
    """
    import nbformat

    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "nbgrader_config.py", NBGRADER_CONFIG)
    for path in notebooks or course_notebooks():
        nb = with_nbgrader_metadata(nbformat.read(path, as_version=4), Path(path).name)
        nb.cells = [c for c in nb.cells if not is_solution(c)]
        atomic_write_text(out_dir / "source" / NBGRADER_ASSIGNMENT / Path(path).name, nbformat.writes(nb))
    return out_dir


def with_nbgrader_metadata(nb, where: str = "notebook"):
    """``nb`` (changed in place and returned) with nbgrader's cell metadata, derived from the
    markers so that the committed notebooks need none: a code cell with a solution region is a
    solution cell; a cell with hidden tests is an autograded cell worth one point, named after the
    exercise id of its ``check("NN.name", ...)`` (``NN_name``)."""
    import re

    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = {"schema_version": 3, "task": False}
        if BEGIN_SOLUTION in cell.source:
            meta.update(solution=True, grade=False, locked=False, grade_id=f"answer_cell_{i}")
        elif BEGIN_HIDDEN_TESTS in cell.source:
            ids = re.findall(r'^check\("(\d\d\.\w+)"', cell.source, flags=re.M)
            if len(ids) != 1:
                raise ValueError(f"{where}, cell {i}: a cell with hidden tests needs one check(\"NN.name\", ...) call, found {ids}")
            meta.update(solution=False, grade=True, locked=True, points=1, grade_id=ids[0].replace(".", "_"))
        else:
            continue
        cell.metadata["nbgrader"] = meta
    return nb


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.course [NOTEBOOK ...] [--quick] [--out DIR] [--student | --nbgrader]``; default: all, full mode."""
    parser = argparse.ArgumentParser(prog="python -m helpers.course", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/[0-9]*.ipynb in order)")
    parser.add_argument("--quick", action="store_true", help="COURSE_QUICK=1, as the tests run them")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default: {BUILD_DIR.relative_to(ROOT)}, or {STUDENT_DIR.relative_to(ROOT)} with --student)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="per-cell limit in seconds")
    parser.add_argument("--student", action="store_true", help="write solution-free copies instead of running (make student)")
    parser.add_argument("--nbgrader", action="store_true",
                        help=f"lay the course out for nbgrader instead of running (default folder {NBGRADER_DIR.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or course_notebooks()
    if args.nbgrader:
        out = write_nbgrader_course(args.out or NBGRADER_DIR, notebooks)
        print(f"wrote {out}: run `nbgrader generate_assignment {NBGRADER_ASSIGNMENT}` there")
        return 0
    if args.student:
        for path in write_student_copies(args.out or STUDENT_DIR, notebooks):
            print(f"wrote {path}")
        return 0
    return run_course(notebooks, out_dir=args.out or BUILD_DIR, quick=args.quick, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
