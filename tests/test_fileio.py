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
    """The next ``os.open`` that creates a file (or ``os.mkdir``) is followed at once by an interrupt: raised (``how="raise"``)
    or a real SIGTERM to this process, whose handler raises (``how="signal"``)."""
    real_open = os.open
    state = {"armed": True, "how": "raise", "made": []}

    real_mkdir = os.mkdir

    def land(path):
        state["armed"] = False
        state["made"].append(os.fsdecode(path))
        if state["how"] == "raise":
            raise Landed
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs at the next bytecode, wherever that is

    def open_then_interrupt(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if state["armed"] and flags & os.O_CREAT:
            if state["how"] == "raise":
                os.close(fd)
            land(path)
        return fd

    def mkdir_then_interrupt(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        if state["armed"]:
            land(path)

    def handler(signum, frame):
        raise Landed

    previous = signal.signal(signal.SIGTERM, handler)
    monkeypatch.setattr(os, "open", open_then_interrupt)
    monkeypatch.setattr(os, "mkdir", mkdir_then_interrupt)
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

    def scratch(folder):
        with fileio.temporary_folder("rnaloc-scratch-", folder) as tmp:
            with open(os.path.join(tmp, "spool"), "w") as fh:  # never reached when the interrupt lands first
                fh.write("x")

    return {"probe_writable": probe, "atomic_path": atomic, "atomic_path in a tool run": staged,
            "temporary_folder": scratch}


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


def test_a_temporary_folder_is_private_and_removed_with_its_files_however_the_block_ends(tmp_path):
    with fileio.temporary_folder("rnaloc-t-", tmp_path) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and os.path.basename(tmp).startswith("rnaloc-t-")
        assert os.stat(tmp).st_mode & 0o777 == 0o700
        os.makedirs(os.path.join(tmp, "sub"))
        (tmp_path / os.path.basename(tmp) / "sub" / "f").write_text("x")
    assert os.listdir(tmp_path) == []
    with pytest.raises(Landed):
        with fileio.temporary_folder("rnaloc-t-", tmp_path) as tmp:
            (tmp_path / os.path.basename(tmp) / "f").write_text("x")
            raise Landed
    assert os.listdir(tmp_path) == []


def test_a_temporary_folder_defaults_to_tmpdir_and_skips_a_taken_name(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(fileio.tempfile, "tempdir", None)  # gettempdir() reads $TMPDIR again
    names = iter(["aaaa", "bbbb"])
    monkeypatch.setattr(fileio.secrets, "token_hex", lambda n: next(names))
    (tmp_path / "rnaloc-t-aaaa").mkdir()  # someone else's
    with fileio.temporary_folder("rnaloc-t-") as tmp:
        assert tmp == str(tmp_path / "rnaloc-t-bbbb")
    assert os.listdir(tmp_path) == ["rnaloc-t-aaaa"]
