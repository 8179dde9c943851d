"""JupyterHub for a workshop room on one server (workshop/README.md has the whole recipe).

workshop/setup.sh installs this file as PREFIX/etc/jupyterhub_config.py; the hub runs as root:

    sudo COURSE_HUB_PASSWORD='the-day-password' PREFIX/env/bin/jupyterhub -f PREFIX/etc/jupyterhub_config.py

* Log-in: a name of the attendee's choosing (lower-case letters, digits, - and _) and the day's
  shared password (``COURSE_HUB_PASSWORD``, at least 8 characters). JupyterHub's own
  SharedPasswordAuthenticator: it keeps strangers out, not attendees from one another (anyone with
  the password can log in under any name), which suits a day's room, not a term's course.
* Each attendee is a system user ``jupyter-<name>`` (as in The Littlest JupyterHub), created at
  their first log-in, with their own home (mode 0700: nobody else can read it) holding their own
  copy of the notebooks (``~/notebooks``, from PREFIX/handout) and of the course's caches
  (``~/.cache/rl-marketing-course``, from PREFIX/cache: the prefilled posterior), both copied only
  when missing, so their work survives a restart. The copies are made as that user.
* Every server runs JupyterLab as that user (LocalProcessSpawner, setuid) from the one shared
  environment PREFIX/env, and opens notebook 01. The course's code and data (PREFIX/course) are
  read-only for attendees; ``COURSE_CACHE_DIR`` points each one at their own cache.
* Optional: ``COURSE_HUB_ADMIN_PASSWORD`` (32+ characters) lets the user ``instructor`` log in as
  an admin (the hub's admin page: see, stop and start everyone's server); ``COURSE_HUB_API_TOKEN``
  (32+ characters) is an admin token for scripts (the REST API; tests/test_hub.py uses it).

Options that tests and unusual servers change, on the command line or below:
``--AttendeeSpawner.home_base=/home`` (where homes go), ``--AttendeeSpawner.threads=2`` (BLAS/torch
threads per kernel), and JupyterHub's own ``--JupyterHub.bind_url=http://:8000``.
"""

import os
import pwd
import subprocess
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from traitlets import Integer, Unicode

PREFIX = Path(__file__).resolve().parent.parent
ENV = PREFIX / "env"
STATE = PREFIX / "state"
#: Attendee names: short, lower-case, safe as a Unix name once prefixed (32 characters at most).
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,22}$"
SYSTEM_PREFIX = "jupyter-"
NOTEBOOK_01 = "notebooks/01_the_marketing_problem.ipynb"

# What runs as the attendee at each start: copy what is missing from the hand-outs, never overwrite.
_COPY_MISSING = """
import shutil, sys
from pathlib import Path
for src, dst in zip(sys.argv[1::2], sys.argv[2::2]):
    src, dst = Path(src), Path(dst)
    for f in sorted(src.rglob("*")):
        target = dst / f.relative_to(src)
        if f.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
"""


class AttendeeSpawner(LocalProcessSpawner):
    """LocalProcessSpawner for the system user ``jupyter-<name>``, created at the first start."""

    home_base = Unicode("/home", config=True, help="Folder the attendees' homes are created in")
    threads = Integer(2, config=True, help="BLAS / OpenMP / torch threads per kernel (OMP_NUM_THREADS ...)")

    @property
    def system_user(self) -> str:
        return SYSTEM_PREFIX + self.user.name

    def ensure_system_user(self) -> pwd.struct_passwd:
        """The attendee's Unix account, created when missing (no password: log-in goes through the hub)."""
        name = self.system_user
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        home = Path(self.home_base) / name
        self.log.info("creating system user %s (home %s)", name, home)
        subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash",
                        "--user-group", "--comment", f"workshop attendee {self.user.name}", name],
                       check=True, capture_output=True, text=True)
        os.chmod(home, 0o700)
        return pwd.getpwnam(name)

    def make_preexec_fn(self, name):
        return set_user_setuid(self.system_user)

    def user_env(self, env):
        user = pwd.getpwnam(self.system_user)
        cache = f"{user.pw_dir}/.cache/rl-marketing-course"
        n = str(self.threads)
        env.update(USER=self.system_user, HOME=user.pw_dir, SHELL=user.pw_shell,
                   PATH=f"{ENV}/bin:/usr/local/bin:/usr/bin:/bin", VIRTUAL_ENV=str(ENV),
                   COURSE_CACHE_DIR=cache, OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n)
        return env

    async def start(self):
        user = self.ensure_system_user()
        subprocess.run([str(ENV / "bin" / "python"), "-c", _COPY_MISSING,
                        str(PREFIX / "handout"), user.pw_dir,
                        str(PREFIX / "cache"), f"{user.pw_dir}/.cache/rl-marketing-course"],
                       preexec_fn=set_user_setuid(self.system_user), cwd=user.pw_dir,
                       env={"PATH": "/usr/bin:/bin", "HOME": user.pw_dir}, check=True, capture_output=True)
        return await super().start()


c = get_config()  # noqa: F821 (JupyterHub provides get_config)

c.JupyterHub.bind_url = "http://:8000"
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.command = [str(PREFIX / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")

c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ.get("COURSE_HUB_PASSWORD")
if not c.SharedPasswordAuthenticator.user_password:
    sys.exit("jupyterhub_config.py: set COURSE_HUB_PASSWORD (the day's password, 8+ characters)")
c.Authenticator.allow_all = True  # anyone with the password, under a name of their choosing
c.Authenticator.username_pattern = NAME_PATTERN
if os.environ.get("COURSE_HUB_ADMIN_PASSWORD"):
    c.SharedPasswordAuthenticator.admin_password = os.environ["COURSE_HUB_ADMIN_PASSWORD"]
    c.Authenticator.admin_users = {"instructor"}
if os.environ.get("COURSE_HUB_API_TOKEN"):
    c.JupyterHub.services = [{"name": "course-admin", "api_token": os.environ["COURSE_HUB_API_TOKEN"]}]
    c.JupyterHub.load_roles = [{"name": "admin", "services": ["course-admin"]}]

c.JupyterHub.spawner_class = AttendeeSpawner
c.Spawner.cmd = [str(ENV / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = f"/lab/tree/{NOTEBOOK_01}"
c.Spawner.http_timeout = 120  # a busy server at 9 o'clock: 30 servers starting at once
c.Spawner.start_timeout = 180
# A kernel nobody has used for an hour, with no browser tab on it, is shut down (memory back).
c.Spawner.args = ["--MappingKernelManager.cull_idle_timeout=3600", "--MappingKernelManager.cull_interval=300"]
