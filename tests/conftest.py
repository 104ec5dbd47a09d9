"""Shared test fixtures.

``cli(*args, input=None)`` runs the real ``rnaloc`` group in-process and returns
the Click result (exit_code, stdout, stderr). ``test_data`` is the repository's
test-data/ folder; ``datasets`` is the repository's datasets/ folder (the real data
sets, gzipped TSVs; always present in a clone, so tests that use it never skip).
"""

import os
import signal
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnaloc_tools.cli import cli as rnaloc_group

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setenv("RNALOC_NO_PROGRESS", "1")


@pytest.fixture(autouse=True)
def _rnaloc_logger_reset():
    """Each CLI run points the "rnaloc" logger at its own stderr handler and stops its propagation
    (cli._setup_logging), and a module or session fixture may have run one: the logger is put back
    as Python makes it (no handler, propagating, level unset) before and after every test, so that a
    test reading the log with caplog does not depend on which commands ran before it in the process."""
    import logging

    log = logging.getLogger("rnaloc")

    def reset():
        log.handlers[:] = []
        log.propagate = True
        log.setLevel(logging.NOTSET)

    reset()
    yield
    reset()


@pytest.fixture
def one_torch_thread():
    """One torch thread: on the 2-core CI machine torch's default pool only adds contention."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cli():
    runner = CliRunner()

    def run(*args, input=None, env=None):
        return runner.invoke(rnaloc_group, [str(a) for a in args], input=input, env=env, catch_exceptions=False)

    return run


@pytest.fixture(scope="session")
def test_data():
    return REPO / "test-data"


@pytest.fixture(scope="session")
def datasets():
    path = REPO / "datasets"
    assert (path / "miRNA" / "train.tsv.gz").is_file(), f"the real data sets are missing from {path}"
    return path


def one_error_line(result, command):
    """The one stderr line of a command that failed on bad data: exit 1, 'rnaloc COMMAND: error: ...'."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"rnaloc {command}: error: "), lines
    return lines[0]


def leftovers(folder):
    """Temporary or partial files a failed command may have left in ``folder``."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(".") or p.suffix == ".part")


@pytest.fixture(scope="session")
def tiny_rnafm(tmp_path_factory):
    """Path of a tiny seeded RNA-FM checkpoint (2 layers, 32-d) in the official file format."""
    from rnaloc_tools.encoders.rnafm import write_random_checkpoint

    return write_random_checkpoint(tmp_path_factory.mktemp("rnafm") / "RNA-FM_tiny.pth", seed=0)


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder nobody may write into, root included (CI runs as root): mode 555, and for
    root also the immutable attribute (`chattr +i`), which root's privileges do not override."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = os.geteuid() == 0
    if immutable:
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        if done.returncode != 0:
            folder.chmod(0o755)
            pytest.skip(f"running as root, and `chattr +i` failed here ({done.stderr.strip()}): "
                        "no folder that root cannot write")
    try:
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def interruptible():
    """``preexec_fn`` for a child the test will send SIGINT (Ctrl-C): SIGINT back to its default.

    A shell starts background jobs (``pytest ... &``, nohup, some CI runners) with SIGINT
    ignored, children inherit that, and Python then installs no KeyboardInterrupt handler:
    the child would never see the test's Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_npz(path, mats, meta, order=None, **writer_options):
    """An embeddings NPZ of ``mats`` ({id: (L, D) matrix}) written by the package's own writer."""
    from rnaloc_tools.formats import EmbeddingWriter

    with EmbeddingWriter(path, meta, **writer_options) as writer:
        for rid, mat in mats.items():
            writer.add(rid, mat)
        if order is not None:
            writer.set_order(order)
    return path
