"""Opening inputs and writing outputs atomically.

Every output goes through :func:`atomic_path` (or :func:`atomic_output`, built on
it): data are written to a hidden temporary file in the destination folder and
renamed over the destination only when the writer finished without an
exception. A killed or failing job therefore never leaves a half-written file.
``-`` means stdin or stdout; a name ending in ``.gz`` is read or written
gzip-compressed.
"""

import contextlib
import gzip
import hashlib
import io
import os
import shlex
import sys
import tempfile

from . import __version__
from .errors import RnalocError

STDIO = "-"


def is_stdio(path):
    return path is None or str(path) == STDIO


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_binary_input(path):
    """A binary, peekable handle on ``path`` (``-`` is stdin; ``.gz`` is decompressed)."""
    if is_stdio(path):
        stdin = sys.stdin.buffer
        # sniffing the format needs peek(); a pipe's buffer has it, an in-memory stdin may not
        return stdin if hasattr(stdin, "peek") else io.BufferedReader(stdin)
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            handle = gzip.open(path, "rb")
            handle.peek(1)  # a file that is not gzip fails here, not later
            return handle
        return open(path, "rb")
    except gzip.BadGzipFile as exc:
        raise RnalocError(f"{path}: not a gzip file ({exc})") from None
    except OSError as exc:
        raise RnalocError(f"{path}: cannot read: {exc.strerror or exc}") from None


def open_text_input(path):
    """A text handle on ``path`` (UTF-8; ``-`` is stdin; ``.gz`` is decompressed)."""
    return io.TextIOWrapper(open_binary_input(path), encoding="utf-8", newline=None)


def display_name(path):
    return "<stdin>" if is_stdio(path) else os.fspath(path)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On any exception (KeyboardInterrupt and SystemExit included) the temporary
    file is removed and the exception propagates.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isfile(path):
        raise RnalocError(f"{path}: cannot write atomically: not a regular file (a device, pipe or folder)")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".part")
    except OSError as exc:
        raise RnalocError(f"{path}: cannot write: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_output(path, mode="w"):
    """Open ``path`` for writing (text mode ``"w"`` or binary ``"wb"``), atomically.

    ``-`` (or None) writes to stdout, which is never closed.
    """
    if is_stdio(path):
        stream = sys.stdout if mode == "w" else sys.stdout.buffer
        yield stream
        stream.flush()
        return
    if os.path.exists(path) and not os.path.isfile(path):
        # a device or pipe (/dev/null, /dev/stdout, a FIFO): write to it, never rename over it
        with open(path, mode, **({"encoding": "utf-8", "newline": "\n"} if mode == "w" else {})) as handle:
            yield handle
        return
    with atomic_path(path) as tmp:
        if os.fspath(path).endswith(".gz"):
            raw = gzip.open(tmp, mode.replace("w", "wb") if mode == "w" else mode, compresslevel=6)
            handle = io.TextIOWrapper(raw, encoding="utf-8", newline="\n") if mode == "w" else raw
        else:
            handle = open(tmp, mode, encoding="utf-8", newline="\n") if mode == "w" else open(tmp, mode)
        try:
            yield handle
        finally:
            handle.close()


def check_writable(path):
    """Fail early, before any work, when ``path`` cannot be created."""
    if is_stdio(path):
        return
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise RnalocError(f"{path}: cannot write: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise RnalocError(f"{path}: cannot write: folder {folder} is not writable")
    if os.path.isdir(path):
        raise RnalocError(f"{path}: cannot write: it is a folder")


def file_sha256(path, block=1 << 22):
    """SHA-256 of a file, read in blocks (a 1.2 GB checkpoint never sits in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: Workflow systems whose real command lines hold job paths (Galaxy) set this to the command
#: as the user would type it (dataset names, the options they chose); ``#`` lines show it.
COMMAND_LINE_ENV = "RNALOC_COMMAND_LINE"


def command_line():
    """The command line that is running, quoted for a shell; or $RNALOC_COMMAND_LINE, on one line."""
    shown = " ".join(os.environ.get(COMMAND_LINE_ENV, "").split())
    if shown:
        return shown
    argv = list(sys.argv)
    if argv:
        argv[0] = os.path.basename(argv[0])
        if argv[0] in ("__main__.py", "-m"):
            argv[0] = "rnaloc"
    return " ".join(shlex.quote(a) for a in argv)


def provenance_lines(tool):
    """``#`` header lines naming the tool, its version and the command line."""
    return [f"#rnaloc {tool} {__version__}: {command_line()}"]
