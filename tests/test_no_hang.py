"""No hang, no thread fight (issue 10).

* Forking a process after torch or BLAS started their OpenMP thread pools can leave the child
  waiting forever on a lock whose owner thread does not exist in it. Nothing in the project forks
  after that: PyMC samples with ``mp_ctx="spawn"`` (``helpers.bayes.sample_model``) and async vector
  envs start with ``forkserver`` (``helpers.ppo.make_vec_env``). A fresh process proves it below.
* The notebook runner has a per-cell timeout, and on a timeout prints every thread's stack of the
  kernel before failing, so a hang is a readable failure, never a stuck CI; a cell whose
  execute_reply is lost after the kernel finished it costs a grace period, not the timeout.
* torch's global thread count is set once, when an agent is built to train (or loaded with envs
  to train on), not around every call; loading one for inference leaves it alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers import course

ROOT = Path(__file__).resolve().parent.parent
FORK_TEST_TIMEOUT_S = 420  # cold PyMC compilation in two spawned chain processes on a busy 2-core machine

FORK_SCRIPT = textwrap.dedent(
    """
    import time

    import numpy as np
    import torch

    t0 = time.perf_counter()
    torch.set_num_threads(2)
    x = torch.randn(512, 512)
    assert torch.isfinite(x @ x).all()  # torch's OpenMP pool is running now
    a = np.random.default_rng(0).normal(size=(512, 512))
    assert np.isfinite(a @ a).all()  # and BLAS's

    import pymc as pm

    from helpers import bayes

    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 1.0)
        pm.Normal("y", mu, 1.0, observed=np.array([0.1, -0.3, 0.2]))
    settings = bayes.FitSettings(sampler="pymc", chains=2, tune=100, draws=100)
    idata = bayes.sample_model(model, settings, progressbar=False)
    assert idata.posterior["mu"].shape == (2, 100)
    print("pymc ok", flush=True)

    from helpers.ppo import make_vec_env

    envs = make_vec_env("Pendulum-v1", num_envs=2, asynchronous=True)
    obs, _ = envs.reset(seed=0)
    obs, reward, *_ = envs.step(np.zeros((2, 1), dtype=np.float32))
    assert obs.shape == (2, 3) and reward.shape == (2,)
    envs.close()
    print("async env ok", flush=True)
    print(f"FINISHED in {time.perf_counter() - t0:.1f} s", flush=True)
    """
)


def test_no_fork_after_torch_started_its_threads():
    """In a fresh process: use torch and BLAS (their thread pools start), then sample with PyMC on
    2 cores and run an async vector env. It must finish; on a hang, every process of the group
    dumps its Python stacks (faulthandler on SIGABRT) into the failure message."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", FORK_SCRIPT], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=FORK_TEST_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGABRT)  # the child and everything it started: stacks to stderr
        try:
            out, err = proc.communicate(timeout=20)
        finally:
            os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
        pytest.fail(f"hung for {FORK_TEST_TIMEOUT_S} s (fork after threads?)\nstdout:\n{out}\nstacks:\n{err[-20000:]}")
    assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{err[-20000:]}"
    assert "pymc ok" in out and "async env ok" in out and "FINISHED" in out


def test_async_vector_envs_never_fork():
    from helpers.ppo import make_vec_env

    envs = make_vec_env("Pendulum-v1", num_envs=2, asynchronous=True)
    try:
        assert type(envs).__name__ == "AsyncVectorEnv"
        kinds = {type(p).__name__ for p in envs.processes}
        assert kinds <= {"ForkServerProcess", "SpawnProcess"}, kinds  # never "ForkProcess"
    finally:
        envs.close()
    sync = make_vec_env("Pendulum-v1", num_envs=2)
    assert type(sync).__name__ == "SyncVectorEnv"
    sync.close()


# --- the notebook runner: a hang becomes a readable failure ------------------------------------


def _notebook(path: Path, *sources: str) -> Path:
    nb = new_notebook(cells=[new_markdown_cell("# hang")] + [new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.skipif(os.name == "nt", reason="the stack dump uses SIGUSR1")
def test_a_cell_timeout_prints_every_kernel_threads_stack(tmp_path, capsys):
    from nbclient.exceptions import CellTimeoutError

    path = _notebook(
        tmp_path / "hang.ipynb",
        "import threading, time\n\ndef sleepy_worker():\n    time.sleep(120)\n\n"
        "threading.Thread(target=sleepy_worker, daemon=True).start()",
        "def stuck_in_main():\n    time.sleep(120)\n\nstuck_in_main()",
    )
    with pytest.raises(CellTimeoutError) as e:
        course.execute_notebook(path, quick=True, timeout=5)
    stacks = e.value.kernel_stacks
    assert "sleepy_worker" in stacks and "stuck_in_main" in stacks  # both threads, by function name
    assert stacks.count("Thread 0x") >= 2
    assert "stuck_in_main" in capsys.readouterr().err  # printed before failing
    code_cells = [c for c in e.value.notebook.cells if c.cell_type == "code"]
    assert code_cells[0].execution_count == 1  # the runner's own set-up code takes no execution count


def test_a_lost_execute_reply_costs_a_grace_period_not_the_cell_timeout(tmp_path, monkeypatch, capsys):
    """When the kernel reports a cell done ("idle") but its execute_reply never arrives, the runner
    goes on after REPLY_GRACE_S with the cell's outputs, errors included; a reply that does arrive
    (a slow cell) is waited for, however long the cell runs."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setattr(course, "REPLY_GRACE_S", 0.3)
    path = _notebook(tmp_path / "cells.ipynb", "import time\ntime.sleep(1.5)\nx = 41 + 1", "print(x)", "1 / 0")

    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        course.execute_notebook(path, quick=True, timeout=60)
    assert "never came" not in capsys.readouterr().err  # every reply arrived: nothing to recover

    async def reply_lost(self, *args, **kwargs):  # nbclient's wait for the reply, with the reply lost
        await asyncio.Event().wait()

    monkeypatch.setattr(NotebookClient, "_async_poll_for_reply", reply_lost)
    t0 = time.monotonic()
    with pytest.raises(CellExecutionError, match="ZeroDivisionError") as e:  # an error still fails the run
        course.execute_notebook(path, quick=True, timeout=60)
    assert time.monotonic() - t0 < 30  # three grace periods, not a cell timeout
    assert e.value.notebook.cells[2].outputs[0]["text"] == "42\n"
    err = capsys.readouterr().err
    assert err.count("execute_reply never came") == 3 and "lost reply 3" in err


def _reply_received(channel_class, wait_s: float = 1.0) -> bool:
    """Notebook 04's clip-explorer cell, replayed on the shell socket without a kernel: the reply
    arrives while nbclient's iopub task is busy, and that task then syncs an ``ipywidgets.Output``
    back to the kernel with a ``comm_msg`` on the same socket before the event loop has looked at
    it again. Does the reply task, waiting on that socket, get the reply?"""
    import zmq
    import zmq.asyncio
    from jupyter_client.session import Session

    async def scenario() -> bool:
        ctx = zmq.asyncio.Context()
        kernel = zmq.Socket(ctx.socket(zmq.ROUTER))  # the kernel's end, used synchronously
        client = ctx.socket(zmq.DEALER)
        session = Session(key=b"")
        channel = channel_class(client, session)
        try:
            kernel.bind("inproc://shell")  # inproc: a send is in the peer's queue when it returns
            client.connect("inproc://shell")
            channel.send(session.msg("execute_request", {"code": "explorer"}))
            ident = kernel.recv_multipart()[0]
            waiting = asyncio.ensure_future(channel.get_msg(timeout=None))  # nbclient's reply task
            await asyncio.sleep(0.05)  # it now polls the socket
            session.send(kernel, "execute_reply", {"status": "ok"}, ident=[ident])
            time.sleep(0.01)  # the iopub task still busy (and libzmq's 1 ms command throttle passed)
            channel.send(session.msg("comm_msg", {"data": {"method": "update"}}))  # the Output widget's sync
            try:
                return (await asyncio.wait_for(waiting, wait_s))["msg_type"] == "execute_reply"
            except asyncio.TimeoutError:
                return False
        finally:
            client.close(linger=0)
            kernel.close(linger=0)
            ctx.term()

    return asyncio.run(scenario())


def test_a_comm_msg_sent_while_waiting_for_a_reply_does_not_lose_the_reply(tmp_path):
    """The lost execute_reply of notebook 04 (issue 18/19), at its cause: jupyter_client sends on a
    synchronous shadow of the asyncio shell socket, and that send swallows the socket's wake-up for
    a reply that has just arrived (``course._kernel_client_class``). The runner's shell channel
    gets the reply; jupyter_client's own, in the same replay, does not (which shows the replay
    reproduces the race; if it ever gets the reply, upstream fixed it and the workaround can go)."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    runner_channel = course._kernel_manager(str(tmp_path)).client().shell_channel_class  # what the runner uses
    assert runner_channel is not AsyncZMQSocketChannel
    assert _reply_received(runner_channel)
    assert not _reply_received(AsyncZMQSocketChannel), "jupyter_client no longer loses it: drop _kernel_client_class"


def test_the_runner_has_a_per_cell_timeout():
    import inspect

    assert inspect.signature(course.execute_notebook).parameters["timeout"].default == course.CELL_TIMEOUT_S
    assert 60 <= course.CELL_TIMEOUT_S <= 1200


# --- no thread fight ----------------------------------------------------------------------------


def test_torch_threads_are_set_once_not_around_every_call(monkeypatch):
    import gymnasium as gym

    from helpers.ppo import PPO, PPOConfig

    before = torch.get_num_threads()
    calls = []
    real = torch.set_num_threads

    def spy(n):
        calls.append(n)
        real(n)

    try:
        real(2)
        monkeypatch.setattr(torch, "set_num_threads", spy)
        envs = gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync")
        agent = PPO(envs, PPOConfig(num_steps=16, num_epochs=1, num_minibatches=1, hidden_sizes=(8,), torch_threads=1))
        assert calls == [1] and torch.get_num_threads() == 1  # set when the agent is built ...
        agent.learn(64, progress=False)
        agent.predict(np.zeros((3, 3), dtype=np.float32))
        PPO(envs, PPOConfig(num_steps=16, hidden_sizes=(8,), torch_threads=1))
        assert calls == [1]  # ... and never again: not per learn/predict call, not when already so
        PPO(envs, PPOConfig(num_steps=16, hidden_sizes=(8,), torch_threads=None))
        assert calls == [1]  # None: leave torch as it is
    finally:
        real(before)
