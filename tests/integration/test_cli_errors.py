"""Every command fails well: a bad argument is one line on stderr and exit code 2, before any work
starts, never a traceback; results go to stdout."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dmc.cli import app
from dmc.cli.app import COMMANDS


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-errors")
    data = root / "d.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "response": f"The answer is {i + 1}.",
                                        "gold": str(i + 1)}) + "\n" for i in range(3)))
    (root / "afile").write_text("not a directory\n")
    (root / "adir").mkdir()
    return root


# (command line, the start of the one error line); {d}: a good dataset, {f}: an existing file,
# {r}: the fixture's directory
BAD = [
    ("score {d} --student lab-small --out {f}", "error: --out {f} is a file"),
    ("score {r}/missing.jsonl --student lab-small", "error: DATASETS {r}/missing.jsonl: no such file"),
    ("score {d} --student lab-small --epsilon 3", "error: --epsilon must be <= 1"),
    ("score {d} --student lab-small --content letters", "error: --content must be one of numbers, words, decisions, continuations, all"),
    ("score {d} --student lab-small --metrics dmc,nope", "error: unknown metric 'nope'"),
    ("score {d} --student lab-small --config {r}/missing.yaml", "error: config file {r}/missing.yaml does not exist"),
    ("score {d}", "error: missing --student"),
    ("score {d} --student lab-small --field question", "error: --field: bad field spec 'question'"),
    ("stats {d} --student lab-small --out {r}/s --attempt-k 0", "error: --attempt-k must be >= 1"),
    ("stats {d} --student lab-small", "error: missing --out"),
    ("validate {d} --student lab-small --eval {d} --out {r}/v --seeds 0,x", "error: --seeds: expected comma-separated int"),
    ("validate {d} --student lab-small --eval {d} --out {r}/v --experiments e9", "error: unknown experiments ['e9']"),
    ("validate {d} --student lab-small --out {r}/v", "error: missing --eval"),
    ("validate {d} --student lab-small --eval {d} --out {r}/v --e3-strategies sometimes", "error: unknown strategy"),
    ("distill {d} --student lab-small --eval {d} --out {r}/t --policy best", "error: unknown"),
    ("distill {d} --student lab-small --eval {d} --out {r}/t --steps 0", "error: --steps must be >= 1"),
    ("distill {d} --student lab-small --eval {d} --out {r}/t --probe-size big",
     "error: --probe-size must be auto, none or a positive integer"),
    ("distill {d} --student lab-small --eval {d} --out {r}/t --max-capability-size 0",
     "error: --max-capability-size must be >= 1"),
    ("distill {d} --student lab-small --eval {d} --out {f}", "error: --out {f} is a file"),
    ("train {d} {d} --student lab-small --out {r}/t", "error: missing exactly one dataset file"),
    ("train {d} --student lab-small --out {r}/t --lr -1", "error: --lr must be >="),
    ("eval --student lab-small --eval {d} --eval-limit -3", "error: --eval-limit must be >= 1"),
    ("eval --student lab-small --eval {d} --eval-limit 0", "error: --eval-limit must be >= 1"),
    ("eval --student lab-small --eval {d} --eval-top-p 2", "error: --eval-top-p must be <= 1"),
    ("eval --student lab-small --eval {d} --out {f}", "error: --out {f} is a file"),
    ("select --scores {r}/adir --policy mix:softmax", "error: selection policy 'mix:softmax' is now spelled"),
    ("select --scores {r}/adir --unit bytes", "error: --unit must be one of samples, tokens"),
    ("select --scores {r}/missing", "error: --scores {r}/missing: no such file"),
    ("select --scores {r}/adir --out {r}/adir", "error: --out {r}/adir is a directory"),
    ("data check {d} --on-error skipp", "error: --on-error must be one of fail, skip"),
    ("data check {r}/missing.jsonl", "error: PATHS {r}/missing.jsonl: no such file"),
    ("lab build --out {r}/lab --n 0", "error: --n must be >= 1"),
    ("lab build --out {r}/lab --task poetry", "error: --task must be one of"),
    ("lab build --out {f}", "error: --out {f} is a file"),
    ("lab pretrain --student lab-huge --out {r}/p", "error: --student must be one of"),
    ("report {r}/missing", "error: RUN_DIRS {r}/missing: no such file"),
    ("report {r}/adir {d}", "error: --out is required when comparing several runs"),
    ("demo --family poetry", "error: --family must be one of"),
    ("demo --workers 0", "error: --workers must be >= 1"),
]


@pytest.mark.parametrize("line, expected", BAD)
def test_a_bad_argument_is_one_line_on_stderr(files, line, expected):
    fmt = {"d": files / "d.jsonl", "f": files / "afile", "r": files}
    r = CliRunner().invoke(app, line.format(**fmt).split())
    assert r.exit_code == 2, (line, r.stdout, r.stderr, r.exception)
    assert "Traceback" not in r.stdout + r.stderr
    assert r.stdout == ""  # nothing ran, nothing was printed as a result
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected.format(**fmt)), r.stderr


def test_every_command_is_walked():
    walked = {line.split()[0] for line, _ in BAD}
    assert walked == set(COMMANDS), f"add bad-argument cases for {set(COMMANDS) - walked}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_has_an_example_and_flags_without_a_type(name):
    args = ["data", "check", "--help"] if name == "data" else ["lab", "build", "--help"] if name == "lab" else [name, "--help"]
    r = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "Example:" in r.output, name
    for flag_line in (ln for ln in r.output.splitlines() if "--no-" in ln):
        assert "<bool>" not in flag_line, flag_line


def test_an_unknown_command_is_refused_without_a_traceback():
    r = CliRunner().invoke(app, ["scroe"])
    assert r.exit_code == 2 and "No such command" in r.output and "Traceback" not in r.output
