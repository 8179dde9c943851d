"""TEACHING.md works on the day: plans that fit their slots and say which exercises the room writes
and which are homework, every exercise timed, every command real, and notebook 05's RETRAIN_LIVE
switch really retrains. About 15 s on 2 cores (the make dry runs and
argument parses are subprocesses; the retraining is a tiny PPO set-up)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import course

ROOT = Path(__file__).resolve().parent.parent
TEACHING = (ROOT / "TEACHING.md").read_text(encoding="utf-8")
NB05 = ROOT / "notebooks" / "05_training_the_budget_agent.ipynb"
#: a room always loses time: every plan leaves at least this share of its slot free
MAX_SHARE = 0.85


def section(title: str, level: int = 2) -> str:
    """The text of the section whose heading starts with ``title``, up to the next heading of its level or above."""
    found = re.search(rf"^{'#' * level} {re.escape(title)}.*?$(.*?)(?=^#{{1,{level}}} |\Z)", TEACHING, re.M | re.S)
    assert found, f"TEACHING.md has no section {'#' * level} {title}"
    return found.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every row of the first markdown table in ``text`` (header and rule left out)."""
    lines = [ln.strip() for ln in text.splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    rows = []
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return [r for r in rows[2:]]


# --- the plans ---------------------------------------------------------------------------------

PLAN = re.compile(r"^### (.+?) \(slot: (\d+) min[^)]*\)$", re.M)


def plans() -> dict[str, tuple[int, list[list[str]]]]:
    text = section("Workshop plans")
    found = {}
    for m in PLAN.finditer(text):
        body = text[m.end():]
        nxt = PLAN.search(body)
        found[m.group(1)] = (int(m.group(2)), table_rows(body[: nxt.start()] if nxt else body))
    return found


def test_the_three_plans_are_there_with_their_slots():
    slots = {name.split(":")[0]: slot for name, (slot, _) in plans().items()}
    assert slots["90 minutes"] == 90 and slots["Half day"] == 210
    assert 360 <= slots["Full day"] <= 480  # 6 to 8 hours in the room, lunch not counted


@pytest.mark.parametrize("name", ["90 minutes", "Half day", "Full day"])
def test_each_plan_fits_its_slot_with_time_to_spare(name):
    (slot, rows), = [v for k, v in plans().items() if k.startswith(name)]
    body = [r for r in rows if re.fullmatch(r"\d+", r[0])]
    total = [r for r in rows if r[1] == "**total**"]
    minutes = sum(int(r[0]) for r in body)
    assert minutes <= MAX_SHARE * slot, f"{name}: {minutes} min planned in a {slot}-min slot (at most {MAX_SHARE:.0%})"
    assert len(total) == 1 and total[0][0] == f"**{minutes}**", f"{name}: the total row must say {minutes}"
    assert total[0][2] == f"{round(100 * minutes / slot)}% of the slot"
    parts = [r[1] for r in body]
    for needed in ("welcome", "set-up buffer", "questions"):
        assert needed in parts, f"{name}: no {needed!r} row"
    if slot >= 180:
        assert "break" in parts, f"{name}: a slot of {slot} min needs a break"
    assert all(int(r[0]) > 0 for r in body)


def exercise_minutes() -> dict[str, int]:
    rows = table_rows(section("Exercises and their minutes"))
    table = {r[0]: int(r[2]) for r in rows}
    assert len(table) == len(rows), "an exercise is listed twice"
    return table


#: An exercise's id in a check cell: ``check("04.gae", ...)`` (helpers.exercises).
EXERCISE_ID = re.compile(r"""\bcheck\(\s*["'](\d\d\.[a-z_0-9]+)["']""")


def notebook_exercises() -> list[str]:
    """Every exercise in the notebooks, in order: the id its check names (``check("04.gae", ...)``),
    or, in a notebook still in the older form, an ``answer_N`` cell in notebook NN -> "NN.N"."""
    found: list[str] = []
    for path in course.course_notebooks():
        code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        ids = [i for src in code for i in EXERCISE_ID.findall(src)]
        if not ids:
            ids = [f"{path.name[:2]}.{k}" for src in code for k in re.findall(r"^(?:def\s+)?answer_(\d+)\b", src, re.M)]
        found += [i for n, i in enumerate(ids) if i not in ids[:n]]
    return found


def test_the_exercise_table_lists_every_exercise_in_the_notebooks():
    in_notebooks = notebook_exercises()
    assert len(in_notebooks) >= 20
    table = exercise_minutes()
    assert set(table) == set(in_notebooks), (f"missing from TEACHING.md: {sorted(set(in_notebooks) - set(table))}; "
                                             f"no such exercise: {sorted(set(table) - set(in_notebooks))}")
    assert list(table) == in_notebooks, "keep the table in the notebooks' order"
    assert all(0 < m <= 30 for m in table.values())


@pytest.mark.parametrize("name", ["90 minutes", "Half day", "Full day"])
def test_exercise_rows_give_the_exercises_their_minutes(name):
    (slot, rows), = [v for k, v in plans().items() if k.startswith(name)]
    table = exercise_minutes()
    for r in rows:
        if r[1].startswith("exercises"):
            ids = re.findall(r"\b\d\d\.[a-z_0-9]+\b", r[1])
            assert ids and set(ids) <= set(table), f"{name}: {r[1]!r} names no exercise of the table"
            assert int(r[0]) >= sum(table[i] for i in ids), f"{name}: {r[1]!r} gets {r[0]} min, the table says {sum(table[i] for i in ids)}"


#: An exercise id written in prose ("04.gae"); the part after the dot starts with a letter, so
#: "0.05" or "99.47%" never match.
ID_IN_TEXT = re.compile(r"\b\d\d\.[a-z][a-z_0-9]*\b")
#: "every exercise of notebook 07" / "every exercise of notebooks 01 and 07": a whole notebook's exercises.
WHOLE_NOTEBOOKS = re.compile(r"every exercise of notebooks? (\d\d(?:(?:, | and )\d\d)*)")


def write_exercises() -> list[str]:
    """The exercises the table marks **write** (the learner writes model, simulator or PPO code)."""
    return [r[0] for r in table_rows(section("Exercises and their minutes")) if "**write**" in r[1]]


def room_and_home(name: str) -> tuple[list[str], list[str], set[str]]:
    """A plan's "**In the room:** ... **At home:** ..." line: the ids done in the room, the ids
    done at home, and the notebooks whose every exercise is homework."""
    text = section("Workshop plans")
    (body,) = [text[m.end():] for m in PLAN.finditer(text) if m.group(1).startswith(name)]
    nxt = PLAN.search(body)
    body = " ".join((body[: nxt.start()] if nxt else body).split())
    found = re.search(r"\*\*In the room:\*\*(.*?)\*\*At home:\*\*(.*?)(?:\*\*|$)", body)
    assert found, f"{name}: no '**In the room:** ... **At home:** ...' line under the plan"
    home = found.group(2)
    whole = {nb for m in WHOLE_NOTEBOOKS.finditer(home) for nb in re.findall(r"\d\d", m.group(1))}
    return ID_IN_TEXT.findall(found.group(1)), ID_IN_TEXT.findall(home), whole


def test_every_exercise_the_plans_name_is_in_the_notebooks():
    named = set(ID_IN_TEXT.findall(section("Workshop plans")))
    assert named, "the plans name no exercise"
    unknown = named - set(notebook_exercises())
    assert not unknown, f"the plans name exercises no notebook has: {sorted(unknown)}"


@pytest.mark.parametrize("name", ["90 minutes", "Half day", "Full day"])
def test_each_plan_says_which_write_exercises_are_done_in_the_room_and_which_at_home(name):
    """The room does the exercises of the plan's rows, at least one of them a write exercise, in
    the notebooks' order; every write exercise is either in the room or named as homework."""
    (_, rows), = [v for k, v in plans().items() if k.startswith(name)]
    order = list(exercise_minutes())
    in_rows = []
    for r in rows:
        ids = ID_IN_TEXT.findall(r[1])
        assert not ids or r[1].startswith("exercises "), f"{name}: {r[1]!r} names exercises but does not start with 'exercises'"
        in_rows += ids
    room, home, whole = room_and_home(name)
    assert room == in_rows, f"{name}: the room line says {room}, the plan's rows do {in_rows}"
    assert room == sorted(room, key=order.index), f"{name}: the exercises in the room are not in the notebooks' order"
    assert not set(room) & set(home), f"{name}: both in the room and at home: {sorted(set(room) & set(home))}"
    assert set(home) <= set(order), f"{name}: homework that is not in the exercise table: {sorted(set(home) - set(order))}"
    writes = write_exercises()
    assert set(room) & set(writes), f"{name}: no write exercise in the room"
    nowhere = [i for i in writes if i not in room and i not in home and i[:2] not in whole]
    assert not nowhere, f"{name}: write exercises neither in the room nor at home: {nowhere} (add them to its 'At home' line)"


def test_write_exercises_get_the_minutes_of_writing_code():
    """Writing, checking and fixing code takes a pair at least 10 minutes, more than a value exercise's 5."""
    table = exercise_minutes()
    writes = write_exercises()
    assert len(writes) >= 8
    short = {i: table[i] for i in writes if table[i] < 10}
    assert not short, f"write exercises with fewer than 10 minutes: {short}"


def test_the_90_minute_plan_really_trains_live():
    (_, rows), = [v for k, v in plans().items() if k.startswith("90 minutes")]
    row05 = next(r for r in rows if r[1] == "05")
    assert "RETRAIN_LIVE" in row05[2] and "trains live" in row05[2]


def test_the_attendee_email_says_what_to_run_and_what_if_it_fails():
    mail = section("A week before: the attendee e-mail")
    assert "`make check`" in mail and "Environment OK" in mail
    assert "JupyterHub" in mail and "Binder" in mail
    ladder = section("The fallback ladder")
    order = [ladder.index(s) for s in ("**Quick mode**", "**The cache bundle**", "**The instructor's screen**", "**The site**")]
    assert order == sorted(order)


# --- every command in TEACHING.md is real --------------------------------------------------------

#: the first words of a command someone types (after VAR=value assignments)
COMMAND_WORDS = {"make", "python", "python3", "uv", "pip", "jupyter", "git", "bash", "sh", ".venv/bin/python", ".venv/bin/jupyter"}


def commands() -> list[str]:
    """Every command in TEACHING.md: inline code spans and lines of fenced blocks whose first word
    (after ``VAR=value`` assignments) is a command (:data:`COMMAND_WORDS`)."""
    text = re.sub(r"^>\s?", "", TEACHING, flags=re.M)  # the e-mail is a quote
    spans = [ln.split(" # ")[0].strip() for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)
             for ln in block.splitlines()]
    spans += re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))
    found = []
    for span in spans:
        words = [w for w in shlex.split(span) if not re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", w)] if span else []
        if words and words[0] in COMMAND_WORDS and span not in found:
            found.append(span)
    return found


def test_commands_are_found():
    found = commands()
    for expected in ("make check", "make cache-bundle", "make site", "make student", "COURSE_QUICK=1 make lab",
                     "make clean-cache KEEP=posteriors"):
        assert expected in found, f"{expected!r} not extracted from TEACHING.md: {found}"
    assert any("helpers.cachebundle restore" in c for c in found)


#: run a module's ``__main__`` only up to its argument parsing: the options are checked exactly as
#: argparse checks them, and nothing else runs
PARSE_ONLY = r"""
import argparse, os, runpy, sys
_parse = argparse.ArgumentParser.parse_args
def parse_only(self, args=None, namespace=None):
    _parse(self, args, namespace)  # exits 2 with argparse's message on a wrong option
    sys.stdout.flush()
    os._exit(0)
argparse.ArgumentParser.parse_args = parse_only
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
sys.exit("the module ran without parsing its arguments")
"""


@pytest.mark.parametrize("command", commands())
def test_every_command_in_teaching_runs_as_written(command):
    words = shlex.split(command)
    env = dict(os.environ)
    while re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    if words[0] == "make":
        # a dry run: the targets exist and the Makefile accepts the variables; nothing is built
        done = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "No rule to make target" not in done.stderr, f"{command}: {done.stderr}"
        return
    python = {("python",): 1, ("python3",): 1, (".venv/bin/python",): 1, ("uv", "run", "python"): 3}
    prefix = next((n for k, n in python.items() if tuple(words[: len(k)]) == k), None)
    assert prefix is not None and words[prefix] == "-m" and words[prefix + 1].startswith("helpers."), \
        f"{command!r}: no test knows how to check this command; add one here"
    module, args = words[prefix + 1], words[prefix + 2:]
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), f"{command}: no module {module}"
    done = subprocess.run([sys.executable, "-c", PARSE_ONLY, module, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"


# --- notebook 05's RETRAIN_LIVE --------------------------------------------------------------------


def nb05_cell(predicate):
    nb = nbformat.read(NB05, as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and predicate(c)]
    return cell


@pytest.mark.parametrize("env, expected", [({}, False), ({"COURSE_RETRAIN_LIVE": "1"}, True), ({"COURSE_RETRAIN_LIVE": "0"}, False)])
def test_retrain_live_is_a_parameter_read_from_the_environment(env, expected, monkeypatch):
    from helpers import training

    monkeypatch.delenv("COURSE_RETRAIN_LIVE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    params = nb05_cell(lambda c: "parameters" in c.metadata.get("tags", []))
    namespace = {"os": os, "training": training}
    exec(params.source, namespace)
    assert namespace["RETRAIN_LIVE"] is expected
    assert namespace["LIVE_EVERY"] < 100  # the live panels are redrawn during training


def test_the_live_training_cell_passes_it_to_the_cached_helper():
    live = nb05_cell(lambda c: "callback=live" in c.source)
    # one call (no ")" that closes a line in between) that has both the live plot and the switch
    assert re.search(r"training\.cached_training_run\((?:(?!\)\n).)*callback=live(?:(?!\)\n).)*refit=RETRAIN_LIVE\)",
                     live.source, re.S), live.source


def test_a_cached_run_is_retrained_live_when_asked(tmp_path):
    """What RETRAIN_LIVE does: a run in the cache is trained again, the live callback sees every
    update, and the new run replaces the cached one; without it the cached run is loaded, silently."""
    sys.path.insert(0, str(ROOT / "tests"))
    from funnel_fixtures import TRUTH, tiny_budget_ppo

    from helpers import training
    from helpers.baselines import Evaluator

    config, num_envs, batch = tiny_budget_ppo()
    evaluator = Evaluator(TRUTH, n_months=4)  # few months: the first evaluation solves each month's optimum

    def run(refit):
        seen = []
        result = training.cached_training_run("live", TRUTH, 2 * batch, config, num_envs=num_envs, eval_every=1,
                                              n_eval_months=4, evaluator=evaluator, cache_dir=tmp_path,
                                              callback=seen.append, refit=refit)
        return result, seen

    first, seen = run(refit=False)
    assert not first.from_cache and len(seen) == 2
    agent = tmp_path / "live" / "agent.pt"
    stamp = agent.stat().st_mtime_ns
    loaded, seen = run(refit=False)
    assert loaded.from_cache and seen == []  # the default: loaded, nothing trains
    retrained, seen = run(refit=True)
    assert not retrained.from_cache and len(seen) == 2  # trained again, every update shown
    assert agent.stat().st_mtime_ns > stamp
    again, _ = run(refit=False)
    assert again.from_cache and again.wall_s == retrained.wall_s  # the retrained run is the cached one now


def test_the_hub_sizing_table_is_the_workshop_readmes_and_covers_the_planned_memory():
    """TEACHING.md's sizing table = workshop/README.md's (attendees, RAM, cores), and each row's RAM
    holds the plan it states (2 GB for the server + 1.5 GB per attendee)."""
    def rows(text: str) -> dict[int, tuple[int, int]]:
        out = {}
        for line in text.splitlines():
            m = re.match(r"\|\s*(\d+)\s*\|\s*(\d+) GB[^|]*\|\s*(\d+)\s*\|", line)
            if m:
                out[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
        return out
    teaching = rows(section("A hub for the room: how big a server"))
    workshop = rows((ROOT / "workshop" / "README.md").read_text(encoding="utf-8"))
    assert set(teaching) == {10, 30, 100} and teaching == workshop
    for n, (ram, cores) in teaching.items():
        assert ram >= 2 + 1.5 * n and cores >= n / 2
