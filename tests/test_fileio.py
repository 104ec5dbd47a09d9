"""fileio's temporary files: removed however the run ends, even when an interrupt lands while one is being made.

SIGTERM (which the CLI turns into KeyboardInterrupt) or Ctrl-C can arrive at any bytecode. A temporary
file whose name is only known once the call that makes it returns (``tempfile.mkstemp``) is left behind
when the interrupt lands inside that call, after the file exists: seen once in a loaded full-suite run
of ``test_hardening.py::test_sigterm_early_or_twice_exits_130_and_leaves_nothing`` (a
``.rnaloc-probe-*.part`` file left). These tests put the interrupt exactly there.
"""

import os
import signal

import pytest

from rnaloc_tools import fileio


class Landed(BaseException):
    """Stands for the KeyboardInterrupt of a signal (a BaseException, as KeyboardInterrupt is)."""


@pytest.fixture
def interrupt_after_create(monkeypatch):
    """The next ``os.open`` that creates a file is followed at once by an interrupt: raised (``how="raise"``)
    or a real SIGTERM to this process, whose handler raises (``how="signal"``)."""
    real_open = os.open
    state = {"armed": True, "how": "raise", "made": []}

    def open_then_interrupt(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if state["armed"] and flags & os.O_CREAT:
            state["armed"] = False
            state["made"].append(os.fsdecode(path))
            if state["how"] == "raise":
                os.close(fd)
                raise Landed
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs at the next bytecode, wherever that is
        return fd

    def handler(signum, frame):
        raise Landed

    previous = signal.signal(signal.SIGTERM, handler)
    monkeypatch.setattr(os, "open", open_then_interrupt)
    yield state
    signal.signal(signal.SIGTERM, previous)


def _attempts():
    def probe(folder):
        fileio.probe_writable(str(folder))

    def atomic(folder):
        with fileio.atomic_path(str(folder / "out.tsv")) as tmp:
            with open(tmp, "w") as fh:
                fh.write("new\n")

    def staged(folder):
        with fileio.output_transaction():
            fileio.declare_outputs(files=[("-o", str(folder / "out.tsv"))])
            atomic(folder)

    return {"probe_writable": probe, "atomic_path": atomic, "atomic_path in a tool run": staged}


@pytest.mark.parametrize("how", ["raise", "signal"])
@pytest.mark.parametrize("where", sorted(_attempts()))
def test_an_interrupt_as_a_temporary_file_is_made_leaves_nothing(tmp_path, interrupt_after_create, where, how):
    (tmp_path / "out.tsv").write_text("previous\n")  # an output being overwritten (--force) keeps its bytes
    interrupt_after_create["how"] = how
    with pytest.raises(Landed):
        _attempts()[where](tmp_path)
    made = interrupt_after_create["made"]
    assert len(made) == 1 and os.path.dirname(made[0]) == str(tmp_path)  # the interrupt did land after a file was made
    assert sorted(os.listdir(tmp_path)) == ["out.tsv"]
    assert (tmp_path / "out.tsv").read_text() == "previous\n"


def test_a_taken_temporary_name_is_skipped_not_removed(tmp_path, monkeypatch):
    """A random name that is already taken is another file: passed over, never removed."""
    names = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(fileio.secrets, "token_hex", lambda n: next(names))
    with fileio._fresh_file(str(tmp_path), ".x.", ".part") as first:
        assert os.path.basename(first) == ".x.aaaa.part"
        with pytest.raises(Landed):
            with fileio._fresh_file(str(tmp_path), ".x.", ".part") as second:
                assert os.path.basename(second) == ".x.bbbb.part"
                raise Landed
        assert os.path.exists(first) and not os.path.exists(second)
    assert os.path.exists(first)  # a block that ends normally keeps its file (the caller renames it)
