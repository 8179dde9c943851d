"""nbgrader's round trip on the course (issue 18): the student copies in nbgrader's format.

``python -m helpers.course --nbgrader`` lays the course out for nbgrader; nbgrader's own
``generate_assignment`` writes the student copies (the same cells as ``make student``); then
``autograde`` grades two submissions in quick mode:

* the student copy with the solutions pasted into its stubs: full marks, every check "correct",
  and no cell fails, so every figure the full notebook asserts holds in a learner's copy too;
* the student copy as handed out: zero, every check "not answered yet", and no cell fails but the
  hidden tests (Run All goes through, and pays for no solution).

Only the notebooks already in nbgrader's form (solution regions, hidden tests) take part; every
one's unanswered copy is autograded (this replaces tests/test_exercises.py's runs of the student
copies), the solved copies of :data:`SOLVED` only (the notebooks that train nothing; set
``COURSE_NBGRADER_ALL=1`` for all).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import course

NOTEBOOKS = [p for p in course.course_notebooks()
             if any(c.cell_type == "code" and course.BEGIN_SOLUTION in c.source for c in nbformat.read(p, as_version=4).cells)]
#: The notebooks whose solved copy is autograded too (the unanswered copies of all are): the ones
#: that train nothing, to keep CI lean. COURSE_NBGRADER_ALL=1 autogrades every solved copy.
SOLVED = [p for p in NOTEBOOKS if os.environ.get("COURSE_NBGRADER_ALL") == "1" or p.name[:2] in ("01", "02", "03")]
NBGRADER = Path(sys.executable).parent / "nbgrader"
ASSIGNMENT = course.NBGRADER_ASSIGNMENT


def teaching_commands() -> dict[str, list[str]]:
    """TEACHING.md's nbgrader commands ("Grading with nbgrader"), by their subcommand, as written."""
    import re
    import shlex

    text = (course.ROOT / "TEACHING.md").read_text()
    block = text[text.index("**Grading with nbgrader**"):]
    block = re.search(r"^```\n(.*?)^```", block, flags=re.M | re.S).group(1)
    lines = [ln.split(" # ")[0].strip() for ln in block.splitlines()]
    return {shlex.split(ln)[1]: shlex.split(ln)[1:] for ln in lines if ln.startswith("nbgrader ")}


def test_teaching_shows_the_layout_and_nbgrader_commands_this_test_runs():
    assert teaching_commands() == {"generate_assignment": ["generate_assignment", ASSIGNMENT],
                                   "autograde": ["autograde", ASSIGNMENT]}
    text = (course.ROOT / "TEACHING.md").read_text()
    assert "python -m helpers.course --nbgrader" in text and f"cd {course.NBGRADER_DIR.relative_to(course.ROOT)}" in text


def nbgrader(*args, cwd: Path) -> str:
    # nbgrader runs `alembic` (its database migrations) from PATH: the environment's bin first
    env = {**os.environ, "COURSE_QUICK": "1", "TQDM_DISABLE": "1", "PATH": f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("COURSE_STRICT", None)  # a learner's kernel: a wrong answer prints
    done = subprocess.run([str(NBGRADER), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done.stdout + done.stderr


def solved(release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``release`` with the instructor's solutions pasted into its stubs (markers dropped)."""
    out = nbformat.from_dict(release)
    by_id = {c.metadata["nbgrader"]["grade_id"]: c for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    pasted = 0
    for cell in out.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            lines = by_id[meta["grade_id"]].source.split("\n")
            cell.source = "\n".join(ln for ln in lines if ln.strip() not in (course.BEGIN_SOLUTION, course.END_SOLUTION))
            pasted += 1
    assert pasted == len(by_id)
    return out


def printed(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream")


def errors(nb) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)]


@pytest.mark.skipif(not NBGRADER.exists(), reason="nbgrader is in the test extra: make test installs it")
def test_generate_assignment_then_autograde_gives_full_marks_to_the_solutions_and_zero_to_the_stubs(tmp_path):
    assert {p.name[:2] for p in NOTEBOOKS} >= {"01", "02", "03"}
    root = tmp_path / "grading"
    assert course.main(["--nbgrader", "--out", str(root), *map(str, NOTEBOOKS)]) == 0
    commands = teaching_commands()  # run as TEACHING.md writes them, in the laid-out folder
    nbgrader(*commands["generate_assignment"], cwd=root)

    release = root / "release" / ASSIGNMENT
    exercises = {}
    for path in NOTEBOOKS:
        ours = course.student_copy(nbformat.read(path, as_version=4))
        theirs = nbformat.read(release / path.name, as_version=4)
        # nbgrader hands out exactly what `make student` does
        assert [c.source for c in theirs.cells] == [c.source for c in ours.cells], path.name
        exercises[path.name] = sum(course.BEGIN_HIDDEN_TESTS in c.source for c in nbformat.read(path, as_version=4).cells)
        source = nbformat.read(root / "source" / ASSIGNMENT / path.name, as_version=4)
        submissions = [("unsolved", theirs)] + ([("solved", solved(theirs, source))] if path in SOLVED else [])
        for student, nb in submissions:
            target = root / "submitted" / student / ASSIGNMENT / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)

    nbgrader(*commands["autograde"], cwd=root)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        scores = {(s, nb.name): (nb.score, nb.max_score) for s in ("solved", "unsolved")
                  for nb in gb.find_submission(ASSIGNMENT, s).notebooks}
    for path in NOTEBOOKS:
        n = float(exercises[path.name])
        assert scores[("unsolved", path.stem)] == (0, n), path.name
        if path in SOLVED:
            assert scores[("solved", path.stem)] == (n, n), f"{path.name}: the solutions get {scores[('solved', path.stem)]}"

    for path in NOTEBOOKS:
        if path in SOLVED:
            done = nbformat.read(root / "autograded" / "solved" / ASSIGNMENT / path.name, as_version=4)
            assert errors(done) == [], f"{path.name}: with the solutions pasted in, cells {errors(done)} failed"
            assert printed(done).count(": correct.") == exercises[path.name]
        blank = nbformat.read(root / "autograded" / "unsolved" / ASSIGNMENT / path.name, as_version=4)
        graded = [i for i, c in enumerate(blank.cells) if c.metadata.get("nbgrader", {}).get("grade")]
        assert errors(blank) == graded, f"{path.name}: only the hidden tests may fail in an unanswered copy"
        assert printed(blank).count("not answered yet") == exercises[path.name] and ": correct." not in printed(blank)
    shutil.rmtree(root, ignore_errors=True)
