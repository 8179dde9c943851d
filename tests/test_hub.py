"""The workshop's JupyterHub (workshop/): built by its own recipe, used by three attendees at once.

One hub for the whole module (the ``hub`` fixture), set up as workshop/README.md says:
``workshop/setup.sh`` builds the prefix (a fresh temporary folder under /tmp, open to other users:
attendees cannot reach anything under /root), the hub starts from the README's command on
loopback ports, and three attendees log in through /hub/login with the day's shared password.
The README's commands are taken from its text; the test changes only the prefix (/opt/rl-course
-> the temporary one), drops ``sudo`` (it runs as root), prefills the quick-mode posterior
(``--quick``: a fit of seconds instead of minutes) and adds the loopback ports, the folder for
the homes and an admin API token.

Then: every attendee has their own system user, home (0700) and server, which answers through the
hub on /user/<name>/api/status to their token only; one attendee cannot read another's files
(neither through their server nor from their own processes); each runs ``python -m helpers.check``
and notebook 01 in quick mode as their own user; and the memory per attendee is measured (resident
memory summed over the attendee's processes, split into their own and the mapped libraries'):
idle (server only; server and a fresh kernel) for all three, then for one attendee after notebook
02 (from the prefilled posterior) and during notebook 05's first training run (shortened: the
memory, not the time, is measured). The figures go to build/bench/hub_memory.json.

Skipped unless run as root with useradd, npm and the clone's uv (.tools/bin/uv). Whatever
happens, the module's end stops the hub, kills what the test users still run, deletes them (home
included) and removes the prefix.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import psutil
import pytest
import requests

from helpers import course
from helpers.data import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "workshop" / "README.md"
UV = ROOT / ".tools" / "bin" / "uv"
BENCH = ROOT / "build" / "bench" / "hub_memory.json"
#: This run's attendees: the pid in their names keeps two runs on one machine (two developers'
#: suites) from deleting each other's users.
RUN = f"ht{os.getpid()}"
ATTENDEES = (f"{RUN}-a", f"{RUN}-b", f"{RUN}-c")
LEFTOVER = re.compile(r"^jupyter-ht(\d+)-[a-z]$")  # a test user; stale once its run's process is gone
PASSWORD = "test-day-password"
ADMIN_TOKEN = "hubtest-admin-token-" + "0123456789abcdef" * 2
NB01, NB02, NB05 = ("01_the_marketing_problem.ipynb", "02_bayesian_negative_binomial.ipynb",
                    "05_training_the_budget_agent.ipynb")
MB = 1024 * 1024
#: The README's commands run as `sudo` would: Debian's secure_path and root's home, and nothing of
#: the test's own Python environment (the network's settings, certificates and proxies, stay).
SUDO_ENV = {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CONDA", "COURSE_", "PYTEST", "TQDM", "UV_PROJECT"))}
SUDO_ENV.update(PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME="/root", USER="root", LOGNAME="root")

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                       reason="the hub test creates system users and runs servers as them: run as root"),
    pytest.mark.skipif(shutil.which("useradd") is None or shutil.which("userdel") is None,
                       reason="useradd/userdel missing (the hub creates a system user per attendee)"),
    pytest.mark.skipif(shutil.which("npm") is None, reason="npm missing (the hub's proxy comes from npm)"),
    pytest.mark.skipif(not UV.exists(), reason=f"{UV} missing: run `make test` (it bootstraps uv)"),
]

# Run as an attendee with the shared environment's python: a notebook's cells in a kernel (up to the
# first code cell containing argv[2], when given; argv[3], when given, run after the parameters
# cell), "CELL <i>" printed before each, "DONE" after the last; then the kernel is kept (its memory
# measured) until stdin closes.
DRIVER = r'''
import sys
from pathlib import Path
import nbformat
from nbclient import NotebookClient
path = Path(sys.argv[1])
nb = nbformat.read(path, as_version=4)
if len(sys.argv) > 2 and sys.argv[2]:
    last = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and sys.argv[2] in c.source)
    nb.cells = nb.cells[: last + 1]
if len(sys.argv) > 3:  # papermill-style: a cell of overrides right after the parameters cell
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(sys.argv[3]))
def before(cell, cell_index):
    print(f"CELL {cell_index} of {len(nb.cells)}", flush=True)
client = NotebookClient(nb, kernel_name="python3", timeout=900, on_cell_execute=before,
                        resources={"metadata": {"path": str(path.parent)}})
client.execute(cleanup_kc=False)
print("DONE", flush=True)
sys.stdin.read()
client.km.shutdown_kernel(now=True)
'''


def readme_command(start: str) -> list[str]:
    """The README's one command line starting with ``start`` (in a ```bash block), as argv."""
    return shlex.split(readme_line(start))


def readme_line(start: str) -> str:
    text = README.read_text()
    found = [ln for b in re.findall(r"```bash\n(.*?)```", text, re.S) for ln in b.splitlines() if ln.strip().startswith(start)]
    assert len(found) == 1, f"workshop/README.md: expected one command starting {start!r}, found {found}"
    return found[0].strip()


README_CLEANUP = readme_line("for u in $(getent passwd")
assert "'^jupyter-'" in README_CLEANUP


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's waited-for children and theirs: the test's
    own cost, whatever else the machine runs (wall times on a shared machine say little)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def system_user(name: str) -> pwd.struct_passwd:
    return pwd.getpwnam("jupyter-" + name)


def user_processes(uid: int, exclude=()) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["uids", "status"]):
        uids = p.info["uids"]
        if uids is not None and uids.real == uid and p.pid not in exclude and p.info["status"] != psutil.STATUS_ZOMBIE:
            out.append(p)
    return out


def memory_mb(uid: int, exclude=()) -> dict[str, float]:
    """The user's processes' memory in MB, summed: ``rss`` (resident), split into ``anon`` (their
    own heap and arrays: what each further attendee adds) and ``file`` (mapped files, mostly the
    environment's libraries: in memory once however many attendees map them). Read from
    /proc/<pid>/status (RssAnon, RssFile, RssShmem), which, unlike PSS or USS, does not depend on
    what else the machine runs."""
    tot = {"rss": 0, "anon": 0, "file": 0}
    for p in user_processes(uid, exclude):
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{p.pid}/status").read_text().splitlines())
        except (FileNotFoundError, ProcessLookupError):
            continue
        kb = {k: int(fields[k].split()[0]) for k in ("VmRSS", "RssAnon", "RssFile", "RssShmem") if k in fields}
        tot["rss"] += kb.get("VmRSS", 0) * 1024
        tot["anon"] += (kb.get("RssAnon", 0) + kb.get("RssShmem", 0)) * 1024
        tot["file"] += kb.get("RssFile", 0) * 1024
    return {k: round(v / MB, 1) for k, v in tot.items()}


def wait_kernel_settled(uid: int, timeout: float = 120) -> None:
    """Until the user's kernel process runs and its RSS stays within 1 MB over 2 s."""
    t0, before = time.monotonic(), None
    while time.monotonic() - t0 < timeout:
        kernels = [p for p in user_processes(uid) if "ipykernel_launcher" in " ".join(p.cmdline())]
        if kernels:
            rss = sum(p.memory_info().rss for p in kernels)
            if before is not None and abs(rss - before) < MB:
                return
            before = rss
        time.sleep(2)
    raise AssertionError(f"no settled kernel of uid {uid} after {timeout} s")


def kill_user_processes(names) -> None:
    for name in names:
        try:
            uid = system_user(name).pw_uid
        except KeyError:
            continue
        for _ in range(3):
            procs = user_processes(uid)
            if not procs:
                break
            for p in procs:
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(procs, timeout=5)


def disk_mb(folder: Path) -> float:
    """Disk used under ``folder`` (allocated blocks, each file once), in MB."""
    seen, total = set(), 0
    for dirpath, dirnames, filenames in os.walk(folder):
        for f in filenames + dirnames:
            st = os.lstat(os.path.join(dirpath, f))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return round(total / MB, 1)


def remove_test_users() -> None:
    """Kill every process of this run's system users, then delete them (home included)."""
    kill_user_processes(ATTENDEES)
    # the README's clean-up, restricted to this run's users
    cleanup = README_CLEANUP.replace("'^jupyter-'", f"'^jupyter-{RUN}-'").replace("sudo ", "")
    subprocess.run(["bash", "-c", cleanup], capture_output=True, text=True, timeout=120)
    for name in ATTENDEES:
        subprocess.run(["userdel", "--remove", "jupyter-" + name], capture_output=True)  # when the loop could not
        subprocess.run(["groupdel", "jupyter-" + name], capture_output=True)


def remove_stale_test_users() -> None:
    """Users an interrupted earlier run left behind (its process is gone)."""
    stale = [u.pw_name.removeprefix("jupyter-") for u in pwd.getpwall()
             if (m := LEFTOVER.match(u.pw_name)) and not psutil.pid_exists(int(m.group(1)))]
    kill_user_processes(stale)
    for name in stale:
        subprocess.run(["userdel", "--remove", "jupyter-" + name], capture_output=True)


class Hub:
    """The running hub: its prefix, URL, admin API and what the test measured."""

    def __init__(self, prefix: Path, url: str, proc: subprocess.Popen, log: Path):
        self.prefix, self.url, self.proc, self.log = prefix, url, proc, log
        self.tokens: dict[str, str] = {}
        self.memory: dict[str, float] = {}
        self.timings: dict[str, float] = {}
        self.disk: dict[str, float] = {}

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.url}/hub/api{path}", timeout=60,
                                headers={"Authorization": f"token {ADMIN_TOKEN}"}, **kw)

    def log_in(self, name: str, password: str = PASSWORD) -> requests.Response:
        """The log-in form, as a browser posts it (with the hub's _xsrf cookie)."""
        s = requests.Session()
        s.get(f"{self.url}/hub/login", timeout=60).raise_for_status()
        return s.post(f"{self.url}/hub/login", timeout=120,
                      data={"username": name, "password": password, "_xsrf": s.cookies.get("_xsrf", "")})

    def wait_ready(self, name: str, timeout: float = 240) -> dict:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            server = self.api("GET", f"/users/{name}").json().get("servers", {}).get("")
            if server and server.get("ready"):
                return server
            assert self.proc.poll() is None, f"the hub exited:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.5)
        raise AssertionError(f"{name}'s server not ready after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def user_get(self, name: str, path: str, token: str) -> requests.Response:
        return requests.get(f"{self.url}/user/{name}/api{path}", timeout=60,
                            headers={"Authorization": f"token {token}"}, allow_redirects=False)

    def server_environ(self, name: str) -> dict[str, str]:
        """The environment the hub gave the attendee's server (what their kernels inherit),
        without the server's own hub credentials."""
        pid = self.api("GET", f"/users/{name}").json()["servers"][""]["state"]["pid"]
        env = psutil.Process(pid).environ()
        return {k: v for k, v in env.items() if not k.startswith(("JUPYTERHUB_", "JPY_"))}

    def run_as(self, name: str, argv: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
        user = system_user(name)
        return subprocess.run(argv, user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd=user.pw_dir,
                              env=self.server_environ(name), capture_output=True, text=True, timeout=timeout, **kw)

    def popen_as(self, name: str, argv: list[str], **kw) -> subprocess.Popen:
        user = system_user(name)
        return subprocess.Popen(argv, user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd=user.pw_dir,
                                env=self.server_environ(name), text=True, **kw)

    @property
    def python(self) -> str:
        return str(self.prefix / "env" / "bin" / "python")


def stop_hub(proc: subprocess.Popen, prefix: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the hub stops the servers (already gone) and its proxy
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    pid_file = prefix / "state" / "jupyterhub-proxy.pid"
    if pid_file.exists():
        try:
            psutil.Process(int(pid_file.read_text())).kill()
        except (psutil.NoSuchProcess, ValueError):
            pass


@pytest.fixture(scope="module")
def hub():
    remove_stale_test_users()
    cpu0, wall0 = children_cpu_s(), time.perf_counter()
    prefix = Path(tempfile.mkdtemp(prefix="rl-course-hub-", dir="/tmp"))
    prefix.chmod(0o755)
    proc = None
    try:
        bundle = prefix / "test" / "rl-course-cache.tar.gz"

        def setup(start: str, *extra: str) -> None:
            argv = [a.replace("/opt/rl-course", str(prefix)).replace("build/rl-course-cache.tar.gz", str(bundle))
                    for a in readme_command(start)[1:]]  # without sudo
            out = subprocess.run(argv + list(extra), capture_output=True, text=True, timeout=900, cwd=ROOT, env=SUDO_ENV)
            assert out.returncode == 0, f"{' '.join(argv)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"

        t0, c0 = time.perf_counter(), children_cpu_s()
        setup("sudo workshop/setup.sh --prefix /opt/rl-course --prefill", "--quick")
        setup_s, setup_cpu_s = time.perf_counter() - t0, children_cpu_s() - c0
        # the cache-bundle route, which is also setup.sh run again on the same prefix, now handing out
        # the solution-free copies (--student)
        (prefix / "test").mkdir(mode=0o755)
        subprocess.run([str(prefix / "env" / "bin" / "python"), "-m", "helpers.cachebundle", "create",
                        "--cache", str(prefix / "cache"), "--out", str(bundle)], cwd="/", check=True, capture_output=True)
        shutil.rmtree(prefix / "cache")
        t0, c0 = time.perf_counter(), children_cpu_s()
        setup("sudo workshop/setup.sh --prefix /opt/rl-course --cache-bundle", "--student")
        again_s, again_cpu_s = time.perf_counter() - t0, children_cpu_s() - c0

        start = readme_command("sudo COURSE_HUB_PASSWORD=")
        env = dict(SUDO_ENV, COURSE_HUB_API_TOKEN=ADMIN_TOKEN)
        argv = start[1:]
        while "=" in argv[0] and not argv[0].startswith("/"):
            key, _ = argv.pop(0).split("=", 1)
            env[key] = PASSWORD if key == "COURSE_HUB_PASSWORD" else env.get(key, "")
        argv = [a.replace("/opt/rl-course", str(prefix)) for a in argv]
        port = free_port()
        (prefix / "home").mkdir(mode=0o755)
        argv += [f"--JupyterHub.bind_url=http://127.0.0.1:{port}", f"--JupyterHub.hub_port={free_port()}",
                 f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}",
                 f"--AttendeeSpawner.home_base={prefix / 'home'}"]
        log = prefix / "state" / "hub.log"
        with open(log, "w") as fh:
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd="/", env=env, start_new_session=True)
        h = Hub(prefix, f"http://127.0.0.1:{port}", proc, log)
        h.timings.update(setup_s=setup_s, setup_cpu_s=setup_cpu_s, setup_again_s=again_s, setup_again_cpu_s=again_cpu_s)
        t0 = time.monotonic()
        while True:
            try:
                if requests.get(f"{h.url}/hub/api/", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, f"the hub exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() - t0 < 120, f"the hub did not answer in 120 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        h.timings["hub_start_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        for name in ATTENDEES:  # three log-ins in a row, as a room does
            r = h.log_in(name)
            assert r.status_code == 200 and "/hub/login" not in r.url, f"{name} could not log in: {r.status_code} {r.url}"
        for name in ATTENDEES:
            h.wait_ready(name)
            r = h.api("POST", f"/users/{name}/tokens", json={"note": "tests/test_hub.py", "expires_in": 3600})
            assert r.status_code == 201, r.text
            h.tokens[name] = r.json()["token"]
        h.timings["three_servers_s"] = time.monotonic() - t0
        yield h
    finally:
        t = [time.perf_counter()]
        kill_user_processes(ATTENDEES)  # the servers and kernels first: the hub then stops at once
        if proc is not None:
            stop_hub(proc, prefix)
        t.append(time.perf_counter())
        remove_test_users()
        t.append(time.perf_counter())
        shutil.rmtree(prefix, ignore_errors=True)
        t.append(time.perf_counter())
        print(f"\ntests/test_hub.py: {time.perf_counter() - wall0:.0f} s wall, "
              f"{children_cpu_s() - cpu0:.0f} CPU seconds in its processes (hub, servers, kernels, runs); "
              f"clean-up: hub {t[1] - t[0]:.0f} s, users {t[2] - t[1]:.0f} s, prefix {t[3] - t[2]:.0f} s")


# --- the recipe -----------------------------------------------------------------------------------


def test_the_prefix_is_usable_by_everyone_and_the_hub_state_by_root_only(hub):
    nobody = pwd.getpwnam("nobody")
    out = subprocess.run([hub.python, "-c", "import helpers, jupyterhub, torch; print(helpers.__path__[0])"],
                         user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], cwd="/",
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(hub.prefix / "course" / "helpers")  # the prefix's copy, not the clone
    assert (hub.prefix / "state").stat().st_mode & 0o777 == 0o700
    proxy = subprocess.run([str(hub.prefix / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"), "--version"],
                           capture_output=True, text=True, timeout=60)
    locked = json.loads((ROOT / "workshop" / "package-lock.json").read_text())["packages"]["node_modules/configurable-http-proxy"]
    assert proxy.stdout.strip() == locked["version"]
    assert (hub.prefix / "cache").is_dir() and any((hub.prefix / "cache").glob("funnel_posterior_quick.nc"))
    # --student: the hand-out is every course notebook, its solution regions stubbed, no hidden tests
    handout = sorted(p.name for p in (hub.prefix / "handout" / "notebooks").glob("*.ipynb"))
    assert handout == sorted(p.name for p in course.course_notebooks())
    solutions = sum(course.BEGIN_SOLUTION in c.source for p in course.course_notebooks() for c in nbformat.read(p, 4).cells)
    handed = [c for n in handout for c in nbformat.read(hub.prefix / "handout" / "notebooks" / n, 4).cells]
    assert solutions > 0
    assert not any(course.BEGIN_SOLUTION in c.source or course.BEGIN_HIDDEN_TESTS in c.source or course.is_solution(c) for c in handed)


# --- log-in, servers, isolation ---------------------------------------------------------------------


def test_each_attendee_has_their_own_user_home_and_server(hub):
    uids = set()
    for name in ATTENDEES:
        user = system_user(name)
        uids.add(user.pw_uid)
        home = Path(user.pw_dir)
        assert home.parent == hub.prefix / "home"
        st = home.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (user.pw_uid, 0o700)
        assert (home / "notebooks" / NB01).stat().st_uid == user.pw_uid  # their own copy
        assert (home / ".cache" / "rl-marketing-course" / "funnel_posterior_quick.nc").exists()
        procs = user_processes(user.pw_uid)
        assert any("jupyterhub-singleuser" in " ".join(p.cmdline()) for p in procs)
        r = hub.user_get(name, "/status", hub.tokens[name])
        assert r.status_code == 200 and "last_activity" in r.json(), r.text
        env = hub.server_environ(name)
        assert env["COURSE_CACHE_DIR"] == str(home / ".cache" / "rl-marketing-course")
        assert env["PATH"].split(":")[0] == str(hub.prefix / "env" / "bin")
    assert len(uids) == len(ATTENDEES)
    server = hub.api("GET", f"/users/{ATTENDEES[0]}").json()["servers"][""]
    assert server["url"] == f"/user/{ATTENDEES[0]}/"


def test_a_wrong_password_gets_no_server(hub):
    r = hub.log_in(f"{RUN}-x", password="not-the-password")
    assert r.status_code == 403 and "/hub/login" in r.url
    assert hub.api("GET", f"/users/{RUN}-x").status_code == 404
    with pytest.raises(KeyError):
        system_user(f"{RUN}-x")


def test_an_attendee_cannot_read_another_attendees_files(hub):
    a, b = ATTENDEES[:2]
    secret = Path(system_user(a).pw_dir) / "notebooks" / NB01
    # b's token does not open a's server
    assert hub.user_get(a, "/status", hub.tokens[b]).status_code == 403
    # b's own processes cannot read a's home ...
    out = hub.run_as(b, [hub.python, "-c", f"open({str(secret)!r}).read()"], timeout=60)
    assert out.returncode != 0 and "PermissionError" in out.stderr
    # ... nor can b's server, through a link b makes to it in their own home
    link = Path(system_user(b).pw_dir) / "peek"
    assert hub.run_as(b, ["ln", "-s", str(secret.parent), str(link)], timeout=30).returncode == 0
    r = hub.user_get(b, "/contents/peek", hub.tokens[b])
    assert r.status_code != 200 and NB01 not in r.text, (r.status_code, r.text[:300])
    r = hub.user_get(b, f"/contents/peek/{NB01}", hub.tokens[b])
    assert r.status_code != 200 and "cells" not in r.text, (r.status_code, r.text[:300])


# --- the course, as each attendee ------------------------------------------------------------------


def test_each_attendee_runs_the_check_and_notebook_01(hub):
    # memory first, while the servers are idle: server only, then with a fresh kernel
    for name in ATTENDEES:
        hub.memory[f"idle_server_{name[-1]}"] = memory_mb(system_user(name).pw_uid)
    for name in ATTENDEES:
        r = requests.post(f"{hub.url}/user/{name}/api/kernels", json={"name": "python3"}, timeout=60,
                          headers={"Authorization": f"token {hub.tokens[name]}"})
        assert r.status_code == 201, r.text
    for name in ATTENDEES:
        wait_kernel_settled(system_user(name).pw_uid)
        r = hub.user_get(name, "/kernels", hub.tokens[name])
        assert len(r.json()) == 1, r.text
        hub.memory[f"idle_kernel_{name[-1]}"] = memory_mb(system_user(name).pw_uid)
        for k in r.json():
            requests.delete(f"{hub.url}/user/{name}/api/kernels/{k['id']}", timeout=60,
                            headers={"Authorization": f"token {hub.tokens[name]}"})

    def course(name):
        t0 = time.perf_counter()
        check = hub.run_as(name, [hub.python, "-m", "helpers.check"])
        t1 = time.perf_counter()
        home = Path(system_user(name).pw_dir)
        nb = hub.run_as(name, [hub.python, "-m", "helpers.course", str(home / "notebooks" / NB01), "--quick",
                               "--out", str(home / "quick-run")])
        return name, check, nb, t1 - t0, time.perf_counter() - t1

    t0, c0 = time.perf_counter(), children_cpu_s()
    with ThreadPoolExecutor(len(ATTENDEES)) as pool:
        results = list(pool.map(course, ATTENDEES))
    hub.timings["check_and_01_all_s"] = time.perf_counter() - t0
    hub.timings["check_and_01_all_cpu_s"] = children_cpu_s() - c0
    for name, check, nb, check_s, nb_s in results:
        hub.timings[f"check_{name[-1]}_s"], hub.timings[f"notebook_01_{name[-1]}_s"] = check_s, nb_s
        assert check.returncode == 0 and "Environment OK" in check.stdout, f"{name}:\n{check.stdout[-3000:]}\n{check.stderr[-2000:]}"
        assert str(Path(system_user(name).pw_dir) / ".cache" / "rl-marketing-course") in check.stdout
        assert nb.returncode == 0, f"{name}:\n{nb.stdout[-3000:]}\n{nb.stderr[-3000:]}"
        out = Path(system_user(name).pw_dir) / "quick-run" / NB01
        assert out.stat().st_uid == system_user(name).pw_uid
        hub.disk[name] = disk_mb(Path(system_user(name).pw_dir))


def run_measured(hub: Hub, name: str, notebook: str, stop: str | None = None, overrides: str | None = None) -> dict:
    """Run ``notebook`` (up to the cell containing ``stop``) through DRIVER as ``name``, sampling the
    attendee's memory (without the driver itself) every 0.5 s; returns the peak over the last cell
    and the memory once it is done, kernel still alive."""
    user = system_user(name)
    driver = hub.prefix / "test" / "driver.py"  # readable by the attendee (state/ is root's only)
    driver.write_text(DRIVER)
    driver.chmod(0o644)
    home = Path(user.pw_dir)
    env_extra = {"COURSE_QUICK": "1", "TQDM_DISABLE": "1"}
    argv = ["env", *(f"{k}={v}" for k, v in env_extra.items()), hub.python, str(driver), str(home / "notebooks" / notebook)]
    extra = [stop or "", overrides] if overrides else [stop] if stop else []
    errors = open(hub.prefix / "test" / f"{notebook}.stderr", "w+")  # a file: a full pipe would block the run
    proc = hub.popen_as(name, argv + extra, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
    state = {"cell": None, "last": False, "done": False, "peak_last": {"rss": 0.0}, "lines": []}
    server_pid = hub.api("GET", f"/users/{name}").json()["servers"][""]["state"]["pid"]
    cpu: dict[int, float] = {}  # CPU seconds of each process of the run (driver, kernel), last seen

    def sample_cpu():
        for p in user_processes(user.pw_uid, exclude={server_pid}):
            try:
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                pass

    def read():
        for line in proc.stdout:
            state["lines"].append(line)
            m = re.match(r"CELL (\d+) of (\d+)", line)
            if m:
                state["last"] = int(m.group(1)) == int(m.group(2)) - 1
            elif line.strip() == "DONE":
                state["done"] = True

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    t0 = time.monotonic()
    try:
        while not state["done"]:
            sample_cpu()
            if proc.poll() is not None:
                errors.seek(0)
                raise AssertionError(f"{notebook} failed as {name}:\n{''.join(state['lines'])[-2000:]}\n{errors.read()[-4000:]}")
            assert time.monotonic() - t0 < 900, f"{notebook} ran past 900 s"
            if state["last"]:
                m = memory_mb(user.pw_uid, exclude={proc.pid})
                if m["rss"] > state["peak_last"]["rss"]:
                    state["peak_last"] = m
            time.sleep(0.5)
        after = memory_mb(user.pw_uid, exclude={proc.pid})
        sample_cpu()
        result = {"after": after, "peak_last_cell": state["peak_last"], "seconds": time.monotonic() - t0,
                  "cpu_s": sum(cpu.values())}
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        errors.close()
    return result


def test_memory_per_attendee_after_notebook_02_and_during_05_training(hub):
    name = ATTENDEES[0]
    nb02 = run_measured(hub, name, NB02)
    # notebook 05 up to its first training, shortened to 5 updates (quick mode: 25): the memory of
    # a training run does not grow with its length (rollouts of 128 months x 32 days), its time does
    nb05 = run_measured(hub, name, NB05, stop="training.cached_training_run(", overrides="TRAIN_STEPS = 20_480")
    hub.timings["notebook_02_s"], hub.timings["notebook_05_to_training_s"] = nb02["seconds"], nb05["seconds"]
    hub.timings["notebook_02_cpu_s"], hub.timings["notebook_05_to_training_cpu_s"] = nb02["cpu_s"], nb05["cpu_s"]
    for key, m in (("after_02", nb02["after"]), ("during_05_training_peak", nb05["peak_last_cell"])):
        hub.memory[key] = m
    idle = [hub.memory[f"idle_server_{n[-1]}"] for n in ATTENDEES]
    kernel = [hub.memory[f"idle_kernel_{n[-1]}"] for n in ATTENDEES]
    hub_procs = [psutil.Process(hub.proc.pid)]
    pid_file = hub.prefix / "state" / "jupyterhub-proxy.pid"
    hub_procs.append(psutil.Process(int(pid_file.read_text())))
    figures = {
        "attendees": len(ATTENDEES),
        "hub_and_proxy_rss_mb": round(sum(p.memory_info().rss for p in hub_procs) / MB, 1),
    }
    for label, series in (("idle_server", idle), ("idle_server_and_kernel", kernel)):
        for k in ("rss", "anon", "file"):
            vals = [m[k] for m in series]
            figures[f"{label}_{k}_mb_median"] = sorted(vals)[len(vals) // 2]
            figures[f"{label}_{k}_mb_min"], figures[f"{label}_{k}_mb_max"] = min(vals), max(vals)
    homes = sorted(hub.disk.values())
    if homes:
        figures.update(home_disk_mb_median=homes[len(homes) // 2], home_disk_mb_min=homes[0], home_disk_mb_max=homes[-1])
    for key in ("after_02", "during_05_training_peak"):
        for k in ("rss", "anon", "file"):
            figures[f"{key}_{k}_mb"] = hub.memory[key][k]
    figures.update({k: round(v, 1) for k, v in hub.timings.items()})
    BENCH.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(BENCH, json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    # what the figures must show for the sizing to make sense
    assert all(m["rss"] > 50 for m in idle)  # a JupyterLab server is tens of MB at least
    assert figures["idle_server_and_kernel_rss_mb_median"] > figures["idle_server_rss_mb_median"]
    assert figures["after_02_rss_mb"] > figures["idle_server_and_kernel_rss_mb_median"]
    assert figures["during_05_training_peak_rss_mb"] > figures["idle_server_and_kernel_rss_mb_median"]
