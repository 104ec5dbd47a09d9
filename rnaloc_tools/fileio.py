"""Opening inputs and writing outputs: atomically, all together, never over an input.

Every output goes through :func:`atomic_path` (or :func:`atomic_output`, built on
it): data are written to a hidden temporary file in the destination folder and
renamed over the destination only when the writer finished without an
exception. A killed or failing job therefore never leaves a half-written file.
``-`` means stdin or stdout; a name ending in ``.gz`` is read or written
gzip-compressed.

A tool with several outputs runs inside one :func:`output_transaction`: the
outputs it declared are *staged* (written to their temporary files) and renamed
into place together when the tool finished, so a failure leaves none of them
(all or nothing). Declaring an output (:meth:`OutputTransaction.declare`) checks,
before any work, that it is not the same file as an input or as another output
(resolved files are compared: a relative path, ``./x``, a symlink and a hard
link are the same file), that its folder is writable (a probe file is created
and removed) and that its name, and the temporary name beside it, fit the file
system's NAME_MAX.
"""

import contextlib
import errno
import gzip
import hashlib
import io
import os
import re
import secrets
import shlex
import shutil
import sys
import tempfile
import zlib

from . import __version__, interrupts
from .errors import InputError, OutputConflict, RnalocError

STDIO = "-"
#: Longest file name (bytes) when the file system does not say.
DEFAULT_NAME_MAX = 255
#: ``.`` + name + ``.`` + 8 random characters + ``.part``: what a temporary name adds.
_TMP_RANDOM = 8
_TMP_SUFFIX = ".part"
_TMP_EXTRA = 2 + _TMP_RANDOM + len(_TMP_SUFFIX)
#: errno values that mean the disk (or the user's quota) is full.
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_stdio(path):
    return path is None or str(path) == STDIO


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def display_name(path):
    return "<stdin>" if is_stdio(path) else os.fspath(path)


# --------------------------------------------------------------------------- reading

#: What a damaged gzip stream raises while it is read.
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


class _CheckedGzipFile(gzip.GzipFile):
    """A gzip reader whose truncated or corrupt stream is an :class:`InputError` naming the file.

    ``gzip`` raises ``EOFError`` (a truncated file), ``BadGzipFile`` or
    ``zlib.error`` (a corrupt one) at whatever read reaches the damage; every
    reader of the package reads through this class, so each of them reports
    the file in one line.
    """

    def _fail(self, exc):
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, EOFError):
            problem = f"truncated gzip file (it ends before the end of the compressed data: {detail})"
        else:
            problem = f"corrupt gzip file ({detail})"
        return InputError(self.name, problem)

    def _guard(method):  # noqa: N805 - a decorator used inside the class body
        def guarded(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except _GZIP_ERRORS as exc:
                raise self._fail(exc) from None

        guarded.__name__ = method.__name__
        return guarded

    read = _guard(gzip.GzipFile.read)
    read1 = _guard(gzip.GzipFile.read1)
    readinto = _guard(gzip.GzipFile.readinto)
    readinto1 = _guard(gzip.GzipFile.readinto1)
    peek = _guard(gzip.GzipFile.peek)
    readline = _guard(gzip.GzipFile.readline)
    readlines = _guard(gzip.GzipFile.readlines)
    seek = _guard(gzip.GzipFile.seek)

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    del _guard


def open_binary_input(path):
    """A binary, peekable handle on ``path`` (``-`` is stdin; ``.gz`` is decompressed)."""
    if is_stdio(path):
        stdin = sys.stdin.buffer
        # sniffing the format needs peek(); a pipe's buffer has it, an in-memory stdin may not
        return stdin if hasattr(stdin, "peek") else io.BufferedReader(stdin)
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            handle = _CheckedGzipFile(path, "rb")
            try:
                handle.peek(1)  # a file that is not gzip fails here, not later
            except BaseException:
                handle.close()
                raise
            return handle
        return open(path, "rb")
    except OSError as exc:
        raise RnalocError(f"{path}: cannot read: {exc.strerror or exc}") from None


def open_text_input(path):
    """A text handle on ``path`` (UTF-8; ``-`` is stdin; ``.gz`` is decompressed)."""
    return io.TextIOWrapper(open_binary_input(path), encoding="utf-8", newline=None)


def check_regular_file(path, what="file"):
    """``path`` as a string, refusing anything but a regular file (a device, FIFO or folder hangs or
    exhausts memory when read whole: ``/dev/zero``, a named pipe nobody writes to)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(path, "no such file")
    if not os.path.isfile(path):
        kind = "a folder" if os.path.isdir(path) else "not a regular file (a device, pipe or socket)"
        raise InputError(path, f"{what} is {kind}")
    return path


# --------------------------------------------------------------------------- names


def name_max(folder):
    """The longest file name (bytes) the file system of ``folder`` accepts."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return DEFAULT_NAME_MAX


def _folder_of(path):
    return os.path.dirname(os.path.abspath(os.fspath(path)))


def check_name_length(path):
    """Refuse, up front, a file name longer than the file system accepts."""
    folder = _folder_of(path)
    limit = name_max(folder if os.path.isdir(folder) else _existing_ancestor(folder))
    size = len(os.fsencode(os.path.basename(os.fspath(path))))
    if size > limit:
        raise RnalocError(f"{path}: file name too long ({size} bytes; this file system allows {limit})")


def _temp_affixes(path, folder):
    """(prefix, suffix) of a temporary name beside ``path`` that fits NAME_MAX, however long the name."""
    base = os.fsencode(os.path.basename(path))
    room = max(name_max(folder) - _TMP_EXTRA, 1)
    if len(base) > room:
        base = base[:room]
    return "." + os.fsdecode(base) + ".", _TMP_SUFFIX


#: Attempts at a free random temporary name before giving up (as :mod:`tempfile` does).
_TMP_TRIES = 100


@contextlib.contextmanager
def _fresh_entry(folder, prefix, suffix, make, remove):
    """Yield the path of a new entry in ``folder`` (``prefix`` + random + ``suffix``) made by
    ``make(path)`` (which raises FileExistsError for a taken name), removed by ``remove(path)`` when
    the block raises, KeyboardInterrupt and SystemExit included.

    Unlike :func:`tempfile.mkstemp` and :func:`tempfile.mkdtemp`, which give the name only once they
    return, the name is held before the entry is made: an interrupt (Ctrl-C, or SIGTERM, which the
    CLI turns into one) that lands while it is being made, or just after, still finds it and removes it.
    """
    tmp = None
    try:
        for _ in range(_TMP_TRIES):
            tmp = os.path.join(folder, prefix + secrets.token_hex(_TMP_RANDOM // 2) + suffix)
            try:
                make(tmp)
            except FileExistsError:
                tmp = None  # another file's name: never removed here
                continue
            break
        else:
            raise FileExistsError(errno.EEXIST, f"no free temporary name in {_TMP_TRIES} tries", folder)
        yield tmp
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                remove(tmp)
        raise


def _make_file(path):
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _fresh_file(folder, prefix, suffix):
    """:func:`_fresh_entry` for a new empty file (mode 0600)."""
    return _fresh_entry(folder, prefix, suffix, _make_file, os.unlink)


@contextlib.contextmanager
def temporary_folder(prefix, folder=None):
    """A private scratch folder (mode 0700) in ``folder`` (default: ``$TMPDIR``), removed with all
    it holds when the block ends, however it ends: :class:`tempfile.TemporaryDirectory` without its
    window (an interrupt inside :func:`tempfile.mkdtemp` leaves a folder nobody removes)."""
    parent = tempfile.gettempdir() if folder is None else os.fspath(folder)
    with _fresh_entry(parent, prefix, "", lambda p: os.mkdir(p, 0o700), shutil.rmtree) as tmp:
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _fresh_file_beside(path):
    """:func:`_fresh_file` in ``path``'s folder, its name within NAME_MAX however long ``path``'s is."""
    folder = _folder_of(path)
    return _fresh_file(folder, *_temp_affixes(path, folder))


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_filename(name, limit=100):
    """A file name made from text read from a file (a class name, a motif name).

    Only letters, digits and ``. _ + -`` are kept (anything else becomes ``_``):
    no ``/``, no ``..``, no leading dot, no control characters, at most
    ``limit`` characters. No name read from a file ever chooses a path; such
    names pass through here first.
    """
    safe = _UNSAFE.sub("_", str(name)).lstrip(".")[:limit]
    return safe or "_"


def _escape_arg(arg):
    """A shell word for ``arg`` on one line: ``shlex.quote``, or bash's ``$'...'`` when it holds a
    newline or another non-printable character (which would split a ``#`` provenance line)."""
    if all(ch.isprintable() for ch in arg):
        return shlex.quote(arg)
    out = []
    for ch in arg:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "$'" + "".join(out) + "'"


#: Workflow systems whose real command lines hold job paths (Galaxy) set this to the command
#: as the user would type it (dataset names, the options they chose); ``#`` lines show it.
COMMAND_LINE_ENV = "RNALOC_COMMAND_LINE"


def command_line():
    """The command line that is running, quoted for a shell, on one line; or $RNALOC_COMMAND_LINE."""
    shown = " ".join(os.environ.get(COMMAND_LINE_ENV, "").split())
    if shown:
        return shown
    argv = list(sys.argv)
    if argv:
        argv[0] = os.path.basename(argv[0])
        if argv[0] in ("__main__.py", "-m"):
            argv[0] = "rnaloc"
    return " ".join(_escape_arg(str(a)) for a in argv)


def provenance_lines(tool):
    """``#`` header lines naming the tool, its version and the command line (one line each)."""
    return [f"#rnaloc {tool} {__version__}: {command_line()}"]


# --------------------------------------------------------------------------- errors


def write_error(path, exc):
    """The :class:`RnalocError` for an ``OSError`` met while writing ``path``."""
    if getattr(exc, "errno", None) in _FULL:
        return RnalocError(f"no space left on device writing {display_name(path)}")
    if getattr(exc, "errno", None) == errno.EROFS:
        return RnalocError(f"{display_name(path)}: cannot write: read-only file system")
    return RnalocError(f"{display_name(path)}: cannot write: {getattr(exc, 'strerror', None) or exc}")


# --------------------------------------------------------------------------- same file, writable


def _existing_ancestor(folder):
    while folder and not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder or "."


def _identity(path):
    """(device, inode) of an existing file, else None."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _is_special(path):
    """A device or pipe (``/dev/null``, ``/dev/stdout``, a FIFO): written to, never renamed over."""
    return os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path)


def same_file(a, b):
    """Whether two paths name the same file: resolved names, or the same (device, inode)."""
    a, b = os.fspath(a), os.fspath(b)
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    ia, ib = _identity(a), _identity(b)
    return ia is not None and ia == ib


def probe_writable(folder, label=None):
    """Create and remove a file in ``folder``: the only check that holds for root, read-only
    file systems, ACLs and full quotas alike."""
    try:
        with _fresh_file(folder, ".rnaloc-probe-", _TMP_SUFFIX) as probe:
            os.unlink(probe)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise RnalocError(f"{label or folder}: cannot write: folder {folder} is not writable "
                              f"({exc.strerror or exc})") from None
        raise write_error(label or folder, exc) from None


def check_writable(path):
    """Fail early, before any work, when ``path`` cannot be created."""
    if is_stdio(path):
        return
    path = os.fspath(path)
    folder = _folder_of(path)
    if not os.path.isdir(folder):
        raise RnalocError(f"{path}: cannot write: folder {folder} does not exist")
    if os.path.isdir(path):
        raise RnalocError(f"{path}: cannot write: it is a folder")
    check_name_length(path)
    if _is_special(path):
        return
    probe_writable(folder, path)


def check_writable_folder(folder, label="output folder", parents_made=()):
    """Fail early when the output folder ``folder`` (created at the end if missing) cannot be written.

    A missing folder needs an existing, writable parent, or a parent in ``parents_made`` (an output
    folder that is itself made by this run).
    """
    folder = os.path.abspath(os.fspath(folder))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise RnalocError(f"{folder}: cannot write the {label}: it is a file, not a folder")
    check_name_length(folder)
    if os.path.isdir(folder):
        probe_writable(folder)
        return
    parent = os.path.dirname(folder)
    if parent in parents_made:
        return
    if not os.path.isdir(parent):
        raise RnalocError(f"{folder}: cannot write the {label}: folder {parent} does not exist")
    probe_writable(parent, folder)


# --------------------------------------------------------------------------- transactions


class OutputTransaction:
    """The outputs of one tool run: checked up front, staged, and committed together.

    ``declare`` registers outputs (files, or folders whose direct children are
    outputs) and checks them; :func:`atomic_path` stages a declared output
    instead of renaming it; ``commit`` renames every staged file into place,
    ``abort`` removes them (and the folders this run created, when empty).
    """

    def __init__(self):
        self.inputs = []  # (label, path)
        self.files = []  # (label, path)
        self.folders = []  # absolute folder paths
        self.staged = {}  # final path -> temporary path
        self.created = []  # folders made by this run

    # -- declaring
    def add_inputs(self, paths, label="input"):
        for path in paths:
            if path is not None and not is_stdio(path):
                self.inputs.append((label, os.fspath(path)))

    def declare(self, files=(), folders=(), label="output"):
        """Check and register outputs; every check runs before any work.

        ``files`` and ``folders`` hold paths or (label, path) pairs. Two outputs of one call that are
        the same file are refused; a file declared again in a later call (a library function
        re-declaring what the command line gave) is the same output, checked once.
        """
        def labelled(items):
            for item in items:
                item_label, path = item if isinstance(item, tuple) else (label, item)
                if path is not None and not is_stdio(path):
                    yield item_label, os.fspath(path)

        for folder_label, folder in labelled(folders):
            folder = os.path.abspath(folder)
            if folder in self.folders:
                continue
            check_writable_folder(folder, parents_made=self.folders)
            for in_label, source in self.inputs:
                if same_file(folder, source):
                    raise OutputConflict(f"{folder}: the output folder ({folder_label}) is the input "
                                         f"({in_label}) {source}")
            self.folders.append(folder)
        earlier = {os.path.abspath(p) for _, p in self.files}
        this_call = {}
        for file_label, path in labelled(files):
            key = os.path.abspath(path)
            if key in this_call:
                raise OutputConflict(f"{path}: two outputs ({this_call[key]} and {file_label}) are the same file: "
                                     "give each output its own name")
            this_call[key] = file_label
            if key in earlier:
                continue
            parent = _folder_of(path)
            if parent in self.folders and not os.path.isdir(parent):
                check_name_length(path)  # in an output folder made at the end; the folder was checked
            else:
                check_writable(path)
            self._check_distinct(file_label, path)
            self.files.append((file_label, path))

    def _check_distinct(self, label, path):
        special = _is_special(path)
        for in_label, source in self.inputs:
            if same_file(path, source):
                raise OutputConflict(f"{path}: the output ({label}) is the same file as the input ({in_label}) "
                                  f"{source}: give another output name")
        if special:
            return  # /dev/null twice is fine
        for out_label, other in self.files:
            if same_file(path, other):
                raise OutputConflict(f"{path}: two outputs ({out_label} and {label}) are the same file: give "
                                  "each output its own name")

    def covers(self, path):
        path = os.path.abspath(os.fspath(path))
        return any(os.path.abspath(p) == path for _, p in self.files) or os.path.dirname(path) in self.folders

    # -- writing
    def makedirs(self, folder):
        """Make an output folder (and its missing parents), remembered so that a failure removes it."""
        folder = os.path.abspath(os.fspath(folder))
        missing = []
        probe = folder
        while not os.path.isdir(probe):
            missing.append(probe)
            parent = os.path.dirname(probe)
            if parent == probe:
                break
            probe = parent
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise write_error(folder, exc) from None
        self.created.extend(reversed(missing))

    def stage(self, tmp, path):
        path = os.path.abspath(os.fspath(path))
        for in_label, source in self.inputs:  # a late check, for names only known now (logos)
            if same_file(path, source):
                raise OutputConflict(f"{path}: the output is the same file as the input ({in_label}) {source}")
        old = self.staged.get(path)
        if old is not None:  # removed while still listed: an interrupt here leaves abort() nothing to miss
            with contextlib.suppress(OSError):
                os.unlink(old)
        self.staged[path] = tmp

    def commit(self):
        if interrupts.pending():  # its KeyboardInterrupt was dropped somewhere (a __del__, a callback)
            self.abort()
            raise KeyboardInterrupt
        items = list(self.staged.items())
        self.staged = {}
        try:
            for n, (path, tmp) in enumerate(items):
                os.replace(tmp, path)
        except OSError as exc:
            for _, tmp in items[n:]:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise write_error(path, exc) from None
        self.created = []

    def abort(self):
        for tmp in self.staged.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.staged = {}
        for folder in reversed(self.created):
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only when empty: never a file this run did not write
        self.created = []


_transaction = None


def current_transaction():
    """The :class:`OutputTransaction` of the running tool, or None (library use)."""
    return _transaction


@contextlib.contextmanager
def output_transaction():
    """Run a tool's work with its outputs committed together at the end (nested calls join)."""
    global _transaction
    if _transaction is not None:
        yield _transaction
        return
    _transaction = OutputTransaction()
    try:
        yield _transaction
    except BaseException:
        _transaction.abort()
        raise
    else:
        _transaction.commit()
    finally:
        _transaction = None


def declare_outputs(files=(), folders=(), label="output"):
    """Check outputs up front (same file as an input or another output, writable, name length) and,
    inside a tool run, stage them to be committed together. Returns nothing; raises on a problem."""
    if _transaction is not None:
        _transaction.declare(files, folders, label)
        return
    probe = OutputTransaction()
    probe.declare(files, folders, label)


def make_output_dir(folder):
    """``os.makedirs`` for an output folder; inside a tool run a failure removes it again (if empty)."""
    if _transaction is not None:
        _transaction.makedirs(folder)
    else:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise write_error(folder, exc) from None


# --------------------------------------------------------------------------- writing


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On any exception (KeyboardInterrupt and SystemExit included) the temporary
    file is removed and the exception propagates. Inside a tool run, a declared
    output is staged instead and renamed with the tool's other outputs at the end.
    A full disk is reported as "no space left on device writing PATH".
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isfile(path):
        raise RnalocError(f"{path}: cannot write atomically: not a regular file (a device, pipe or folder)")
    check_name_length(path)
    try:
        # the temporary file is removed if anything in this block raises (an interrupt included)
        with _fresh_file_beside(path) as tmp:
            try:
                yield tmp
            except OSError as exc:
                raise write_error(path, exc) from None
            os.chmod(tmp, 0o666 & ~_umask())
            if _transaction is not None and _transaction.covers(path):
                _transaction.stage(tmp, path)
            else:
                interrupts.check()  # never put in place after an interrupt, even one whose exception was lost
                os.replace(tmp, path)
    except OSError as exc:  # making the temporary file, or renaming it into place
        raise write_error(path, exc) from None


@contextlib.contextmanager
def atomic_output(path, mode="w"):
    """Open ``path`` for writing (text mode ``"w"`` or binary ``"wb"``), atomically.

    ``-`` (or None) writes to stdout, which is never closed.
    """
    if is_stdio(path):
        stream = sys.stdout if mode == "w" else sys.stdout.buffer
        try:
            yield stream
            stream.flush()
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise
            raise write_error("<stdout>", exc) from None
        return
    if _is_special(path):
        # a device or pipe (/dev/null, /dev/stdout, a FIFO): write to it, never rename over it
        try:
            with open(path, mode, **({"encoding": "utf-8", "newline": "\n"} if mode == "w" else {})) as handle:
                yield handle
        except OSError as exc:
            raise write_error(path, exc) from None
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


def file_sha256(path, block=1 << 22):
    """SHA-256 of a file, read in blocks (a 1.2 GB checkpoint never sits in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()
