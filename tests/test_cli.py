"""The `rnaloc` group: help order, version, module entry point, exit codes, pipes, stdout."""

import os
import re
import subprocess
import sys

import pytest

from rnaloc_tools import __version__
from rnaloc_tools.cli import COMMANDS, cli as rnaloc_group
from rnaloc_tools.fileio import atomic_output

RNALOC = [sys.executable, "-m", "rnaloc_tools"]


def _listed_commands(help_text):
    section = help_text.split("Commands:", 1)[1]
    return [m.group(1) for m in re.finditer(r"^  (\S+)", section, re.M)]


def test_help_lists_commands_in_pipeline_order(cli):
    result = cli("--help")
    assert result.exit_code == 0
    listed = _listed_commands(result.stdout)
    assert "embed" in listed
    assert listed == [c for c in COMMANDS if c in listed]  # pipeline order, not alphabetical
    assert COMMANDS.index("curate") < COMMANDS.index("embed") < COMMANDS.index("predict")
    for opt in ("-V, --version", "-v, --verbose", "--debug", "-h, --help"):
        assert opt in result.stdout


def test_version(cli):
    for flag in ("-V", "--version"):
        result = cli(flag)
        assert result.exit_code == 0 and __version__ in result.stdout


def test_python_dash_m():
    done = subprocess.run(RNALOC + ["--version"], capture_output=True, text=True)
    assert done.returncode == 0 and __version__ in done.stdout and done.stderr == ""


@pytest.mark.parametrize(
    "args",
    [["--no-such-option"], ["no-such-command"], ["embed"], ["embed", "x.fa"], ["embed", "x.fa", "-o", "y.npz",
                                                                              "--long", "sideways"]],
)
def test_usage_errors_exit_2(cli, args):
    result = cli(*args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr or "Error" in result.stderr
    assert result.stdout == ""


def test_data_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    missing = tmp_path / "missing.fa"
    plain = subprocess.run(RNALOC + ["embed", str(missing), "--encoder", "one-hot", "-o", str(tmp_path / "x.npz")],
                           capture_output=True, text=True)
    assert plain.returncode == 1
    assert plain.stderr.strip().splitlines() == [f"rnaloc embed: error: {missing}: cannot read: No such file or directory"]
    debug = subprocess.run(RNALOC + ["--debug", "embed", str(missing), "--encoder", "one-hot", "-o",
                                     str(tmp_path / "x.npz")], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert os.listdir(tmp_path) == []


def test_broken_pipe_is_quiet():
    """A reader that went away (`| head`) ends the run without a traceback or error noise."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: every write gets EPIPE
    try:
        done = subprocess.run(RNALOC + ["--help"], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr and "Exception" not in done.stderr
    assert done.returncode == 1  # the EPIPE was hit (click exits 1), and quietly


def test_broken_pipe_with_head():
    done = subprocess.run(f"'{sys.executable}' -m rnaloc_tools embed --help | head -n 1", shell=True,
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("Usage:") and done.stderr == ""


def test_stdout_is_never_closed(capsys):
    with atomic_output("-") as out:
        out.write("data\n")
    assert not sys.stdout.closed
    with pytest.raises(SystemExit) as exc:
        rnaloc_group.main(["--version"], prog_name="rnaloc", standalone_mode=True)
    assert exc.value.code == 0
    assert not sys.stdout.closed
    print("still open")
    assert capsys.readouterr().out.endswith("still open\n")
