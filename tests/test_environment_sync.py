"""pyproject.toml (the ranges), uv.lock (the exact versions `make lab`/`make test` install) and
environment.yml (the conda route) describe the same environment.

* pyproject.toml's ``dependencies`` plus the ``test`` and ``compare`` extras (what ``make test``
  installs) must equal environment.yml's conda-forge packages plus its ``pip:`` section, after
  mapping the few names that differ between PyPI and conda-forge, with the same version ranges;
* uv.lock must have been resolved from exactly these requirements (its record of the project's
  ``requires-dist`` equals pyproject.toml's; otherwise ``uv sync --locked`` refuses), and every
  version it pins must satisfy the ranges of both files;
* the Python versions agree: pyproject's ``requires-python``, the lock's, environment.yml's.
Add a dependency to one file and not the others, and this fails; `make lock` refreshes uv.lock.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("test", "compare")  # the extras `make test` installs (Makefile: TEST_EXTRAS)

#: PyPI name -> conda-forge name, where they differ.
PYPI_TO_CONDA = {"torch": "pytorch"}
#: conda packages that are tooling, not dependencies of the course.
CONDA_ONLY = {"python", "pip"}


def normalise(name: str) -> str:
    """PEP 503 normalisation (conda-forge names follow it too)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements(path: Path = ROOT / "pyproject.toml") -> dict[str, SpecifierSet]:
    """conda-forge name -> version specifier, from dependencies + the EXTRAS."""
    project = tomllib.loads(path.read_text())["project"]
    lines = list(project["dependencies"])
    for extra in EXTRAS:
        lines += project["optional-dependencies"][extra]
    reqs = {}
    for line in lines:
        req = Requirement(line)
        name = normalise(req.name)
        reqs[PYPI_TO_CONDA.get(name, name)] = req.specifier
    return reqs


def conda_specifier(constraint: str) -> SpecifierSet:
    """A conda version constraint ('=2.13.0', '>=5.16,<6', '') as a PEP 440 SpecifierSet."""
    parts = []
    for part in filter(None, constraint.split(",")):
        if re.fullmatch(r"=[^=<>!~]+", part):  # conda's `=V` pins the version
            part = "=" + part
        parts.append(part)
    return SpecifierSet(",".join(parts))


def split_conda_spec(spec: str) -> tuple[str, str]:
    """'pytorch=2.13.0=cpu_*' -> ('pytorch', '=2.13.0'); 'pymc>=5.16,<6' -> ('pymc', '>=5.16,<6').

    The build string (after a second '=', or after a space) is dropped.
    """
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(\S*)(?:\s+\S+)?", spec.strip())
    assert m, f"environment.yml: cannot parse {spec!r}"
    name, version = normalise(m.group(1)), m.group(2)
    if version.startswith("=") and not version.startswith("=="):
        version = "=" + version[1:].split("=")[0]  # drop the build string of name=version=build
    return name, version


def environment_requirements(path: Path = ROOT / "environment.yml") -> tuple[dict[str, SpecifierSet], str]:
    """conda-forge name -> version specifier (conda + pip sections), and the python version."""
    env = yaml.safe_load(path.read_text())
    reqs, python = {}, None
    for entry in env["dependencies"]:
        if isinstance(entry, dict):  # the `pip:` section: PEP 508 lines with PyPI names
            for line in entry.get("pip", []):
                req = Requirement(line)
                name = normalise(req.name)
                reqs[PYPI_TO_CONDA.get(name, name)] = req.specifier
            continue
        name, version = split_conda_spec(entry)
        if name == "python":
            python = version.lstrip("=")
        elif name not in CONDA_ONLY:
            reqs[name] = conda_specifier(version)
    return reqs, python


def differences(pip_side: dict, conda_side: dict) -> list[str]:
    """Human-readable differences between the two sides (empty when in sync)."""
    out = [f"{n}: in pyproject.toml, missing from environment.yml" for n in sorted(pip_side.keys() - conda_side.keys())]
    out += [f"{n}: in environment.yml, missing from pyproject.toml" for n in sorted(conda_side.keys() - pip_side.keys())]
    for n in sorted(pip_side.keys() & conda_side.keys()):
        if pip_side[n] != conda_side[n]:
            out.append(f"{n}: version constraints differ: pyproject.toml {str(pip_side[n]) or '(any)'} vs environment.yml {str(conda_side[n]) or '(any)'}")
    return out


def test_package_sets_and_versions_agree():
    pip_side = pyproject_requirements()
    conda_side, _ = environment_requirements()
    assert differences(pip_side, conda_side) == []
    assert len(pip_side) >= 20  # the parse found the real lists, not nothing


def test_python_version_agrees():
    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    _, python = environment_requirements()
    assert python == "3.12"  # what CI tests
    assert f"{python}.0" in requires and "3.13.0" in requires and "3.11.9" not in requires
    assert SpecifierSet(lock()["requires-python"]) == requires


def test_the_conda_route_takes_the_cpu_build_of_torch():
    line = next(d for d in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"] if isinstance(d, str) and d.startswith("pytorch"))
    assert line.split("#")[0].split()[-1] == "cpu_*"


# --- uv.lock --------------------------------------------------------------------------------


def lock(path: Path = ROOT / "uv.lock") -> dict:
    return tomllib.loads(path.read_text())


def locked_versions(lock_data: dict) -> dict[str, list[str]]:
    """PEP 503 name -> the versions uv.lock pins (several only where markers split a package)."""
    out: dict[str, list[str]] = {}
    for pkg in lock_data["package"]:
        if "version" in pkg:
            out.setdefault(normalise(pkg["name"]), []).append(pkg["version"])
    return out


def lock_requirements(lock_data: dict) -> set[tuple[str, str, str]]:
    """(name, specifier, marker) of the project's own requirements, as uv.lock recorded them."""
    root = next(p for p in lock_data["package"] if p.get("source", {}).get("editable") == ".")
    return {(normalise(r["name"]), str(SpecifierSet(r.get("specifier", ""))), r.get("marker", "")) for r in root["metadata"]["requires-dist"]}


def pyproject_lines(path: Path = ROOT / "pyproject.toml") -> set[tuple[str, str, str]]:
    """(name, specifier, marker) of every requirement in pyproject.toml, extras included."""
    project = tomllib.loads(path.read_text())["project"]
    out = {(normalise(Requirement(line).name), str(Requirement(line).specifier), "") for line in project["dependencies"]}
    for extra, lines in project["optional-dependencies"].items():
        out |= {(normalise(Requirement(line).name), str(Requirement(line).specifier), f"extra == '{extra}'") for line in lines}
    return out


def test_the_lock_was_resolved_from_pyproject():
    """uv.lock records the requirements it was resolved from; they must be pyproject's, exactly."""
    recorded, declared = lock_requirements(lock()), pyproject_lines()
    assert recorded == declared, (
        f"uv.lock is out of date (run `make lock`): only in pyproject.toml {sorted(declared - recorded)}, "
        f"only in uv.lock {sorted(recorded - declared)}"
    )


def test_every_locked_version_satisfies_pyproject_and_environment_yml():
    pinned = locked_versions(lock())
    conda_side, _ = environment_requirements()
    conda_to_pypi = {v: k for k, v in PYPI_TO_CONDA.items()}
    bad = []
    for name, spec in pyproject_requirements().items():
        pypi = conda_to_pypi.get(name, name)
        assert pypi in pinned, f"{pypi} is required but not pinned in uv.lock (run `make lock`)"
        for version in pinned[pypi]:
            for where, s in (("pyproject.toml", spec), ("environment.yml", conda_side[name])):
                if version not in s:
                    bad.append(f"{pypi} {version} (uv.lock) outside {where}'s {s}")
    assert bad == []


def test_the_lock_pins_the_stack_the_course_teaches():
    pinned = locked_versions(lock())
    major = {name: {int(v.split(".")[0]) for v in pinned[name]} for name in ("pymc", "arviz", "torch")}
    assert major == {"pymc": {6}, "arviz": {1}, "torch": {2}}
    assert all(len(v) == 1 for k, v in pinned.items() if k in {"pymc", "arviz", "torch", "nutpie", "numpy"})  # one version each


def test_a_stale_lock_is_detected(tmp_path):
    text = (ROOT / "pyproject.toml").read_text().replace('"numpy>=2.1"', '"numpy>=2.1",\n    "polars>=1"')
    (tmp_path / "pyproject.toml").write_text(text)
    assert pyproject_lines(tmp_path / "pyproject.toml") - lock_requirements(lock()) == {("polars", ">=1", "")}


def test_environment_uses_conda_forge():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"


@pytest.mark.parametrize(
    "pip_extra,conda_extra,expected",
    [
        ({"polars": SpecifierSet(">=1")}, {}, "polars: in pyproject.toml, missing from environment.yml"),
        ({}, {"polars": SpecifierSet()}, "polars: in environment.yml, missing from pyproject.toml"),
        ({"numpy": SpecifierSet(">=2")}, {}, "numpy: version constraints differ"),
    ],
)
def test_drift_is_detected(pip_extra, conda_extra, expected):
    pip_side = {**pyproject_requirements(), **pip_extra}
    conda_side = {**environment_requirements()[0], **conda_extra}
    found = differences(pip_side, conda_side)
    assert len(found) == 1 and found[0].startswith(expected)


def test_pip_section_and_name_map_are_understood(tmp_path):
    env = tmp_path / "environment.yml"
    env.write_text(
        "channels: [conda-forge]\n"
        "dependencies:\n"
        "  - python=3.12\n"
        "  - pip\n"
        "  - pytorch=2.13.0=cpu_*\n"
        "  - scipy>=1.11\n"
        "  - pip:\n"
        "      - Some_Package>=1.0\n"
        "      - torch==2.13.0\n"
    )
    reqs, python = environment_requirements(env)
    assert python == "3.12"
    assert reqs == {"pytorch": SpecifierSet("==2.13.0"), "scipy": SpecifierSet(">=1.11"), "some-package": SpecifierSet(">=1.0")}


@pytest.mark.parametrize(
    "spec,name,version",
    [("pytorch=2.13.0=cpu_*", "pytorch", "=2.13.0"), ("pytorch >=2.15,<3 cpu_*", "pytorch", ">=2.15,<3"), ("pymc>=6.4,<7", "pymc", ">=6.4,<7"), ("pip", "pip", ""), ("Stable_Baselines3 >=2.3", "stable-baselines3", ">=2.3")],
)
def test_conda_specs_split_into_name_and_version(spec, name, version):
    assert split_conda_spec(spec) == (name, version)


@pytest.mark.parametrize(
    "conda,pep440",
    [("=2.13.0", "==2.13.0"), (">=5.16,<6", ">=5.16,<6"), ("", ""), (">=8,<9", "<9,>=8")],
)
def test_conda_constraints_translate_to_pep440(conda, pep440):
    assert conda_specifier(conda) == SpecifierSet(pep440)


def test_the_makefile_installs_the_extras_checked_here():
    """`make test` installs TEST_EXTRAS; `make lab` none (the attendee set): the same list as EXTRAS."""
    makefile = (ROOT / "Makefile").read_text()
    m = re.search(r"^TEST_EXTRAS\s*:=\s*(.*)$", makefile, flags=re.M)
    assert m and tuple(m.group(1).split()) == EXTRAS
    lab_sync = re.search(r"^\$\(VENV\)/\.installed-course:.*?\n((?:\t.*\n)+)", makefile, flags=re.M).group(1)
    assert "--extra" not in lab_sync and "TEST_EXTRAS" not in lab_sync, "make lab must install no extras"
