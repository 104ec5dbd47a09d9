"""Running CD-HIT-EST and reading its ``.clstr`` files.

``cd-hit-est`` (clustering one set) and ``cd-hit-est-2d`` (one set against
another) come from the ``cd-hit`` package (Debian/Ubuntu and bioconda). They
are run with full names (``-d 0``), the word size CD-HIT's user guide gives
for the identity threshold, and no memory cap by default (``-M 0``).

Sequences of ``min_length`` nt or shorter are discarded by CD-HIT (its ``-l``);
:func:`cluster` returns them as singleton clusters and says how many there were.
"""

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from Bio.Seq import Seq
from Bio.SeqIO import write as write_fasta
from Bio.SeqRecord import SeqRecord

from ..errors import InputError, MissingDependencyError, RnalocError
from ..fileio import atomic_path, temporary_folder

log = logging.getLogger("rnaloc")

INSTALL_HINT = "install CD-HIT: `apt-get install cd-hit` (Debian/Ubuntu) or `conda install -c bioconda cd-hit`"

#: CD-HIT user guide, cd-hit-est: word size for a range of identity thresholds.
WORD_SIZES = ((0.95, 10), (0.90, 8), (0.88, 7), (0.85, 6), (0.80, 5), (0.75, 4))
MIN_IDENTITY = WORD_SIZES[-1][0]
#: cd-hit-est's own default for -l: sequences this long or shorter are thrown away.
DEFAULT_MIN_LENGTH = 10


def word_size(identity):
    """The word size (``-n``) CD-HIT's user guide recommends for ``identity`` (0.75 to 1)."""
    if not MIN_IDENTITY <= identity <= 1.0:
        raise RnalocError(f"identity {identity} is outside the range cd-hit-est supports ({MIN_IDENTITY} to 1.0)")
    for threshold, n in WORD_SIZES:
        if identity >= threshold:
            return n
    raise AssertionError("unreachable")


def find_program(name):
    path = shutil.which(name)
    if path is None:
        raise MissingDependencyError(f"{name} is not installed (not found on PATH): {INSTALL_HINT}")
    return path


@dataclass
class Member:
    name: str
    length: int
    representative: bool
    identity: float = None  # percent; None for the representative
    strand: str = None


_CLUSTER = re.compile(r"^>Cluster (\d+)\s*$")
_MEMBER = re.compile(r"^(\d+)\t(\d+)(?:nt|aa), >(.+)\.\.\. (?:(\*)|at (?:([+-])/)?(\d+(?:\.\d+)?)%)\s*$")


def parse_clstr(path):
    """Read a CD-HIT ``.clstr`` file: a list of clusters, each a list of :class:`Member`.

    Every line must be a ``>Cluster N`` header or a member line; each cluster
    needs exactly one representative (``*``); names are unique. Anything else
    is an :class:`InputError` naming the file and line.
    """
    source = os.fspath(path)
    clusters, seen = [], set()
    try:
        handle = open(source, encoding="utf-8")
    except OSError as exc:
        raise InputError(source, f"cannot read: {exc.strerror or exc}") from None

    def bad(problem, lineno):
        return InputError(source, f"malformed .clstr file: {problem}", line=lineno)

    def close(lineno):
        if clusters:
            reps = sum(m.representative for m in clusters[-1])
            if not clusters[-1]:
                raise bad("a cluster without members", lineno)
            if reps != 1:
                raise bad(f"a cluster with {reps} representatives (marked '*'), expected 1", lineno)

    with handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                if _CLUSTER.match(line):
                    close(lineno)
                    clusters.append([])
                    continue
                m = _MEMBER.match(line)
                if m is None:
                    raise bad(f"unexpected line {line[:60]!r}", lineno)
                if not clusters:
                    raise bad("a member line before the first '>Cluster' header", lineno)
                name = m.group(3)
                if name in seen:
                    raise bad(f"sequence {name!r} appears twice", lineno)
                seen.add(name)
                rep = m.group(4) is not None
                clusters[-1].append(
                    Member(name, int(m.group(2)), rep, None if rep else float(m.group(6)), m.group(5))
                )
        except UnicodeDecodeError as exc:
            raise InputError(source, f"not a text file ({exc.reason})") from None
        close(lineno + 1)
    if not clusters:
        raise InputError(source, "malformed .clstr file: no clusters")
    return clusters


def cluster_index(path):
    """``{sequence name: cluster number}`` (numbered in file order, as CD-HIT does) from a ``.clstr``."""
    return {m.name: number for number, members in enumerate(parse_clstr(path)) for m in members}


def check_names(seqs, source):
    """Fail, naming ``source`` and the record, on an id cd-hit-est cannot keep (empty or with white space)."""
    for name in seqs:
        if not name or re.search(r"\s", name):
            raise InputError(source, "id is empty or contains white space, which cd-hit-est cannot keep", name)


def _write_fasta(seqs, path):
    for name in seqs:
        if not name or re.search(r"\s", name):
            raise RnalocError(f"id {name!r} is empty or contains white space, which cd-hit-est cannot keep")
    records = (SeqRecord(Seq(s), id=name, description="") for name, s in seqs.items())
    write_fasta(records, path, "fasta")


def _run(argv, workdir):
    log.debug("running: %s", " ".join(argv))
    try:
        proc = subprocess.run(argv, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              errors="replace")
    except OSError as exc:
        raise RnalocError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        # CD-HIT says why on stderr ("Fatal Error: not enough memory ..."); its stdout is progress and
        # a memory table, which would hide the reason when both are read as one stream
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        lines = lines or [line.strip() for line in proc.stdout.splitlines() if line.strip()]
        tail = " | ".join(lines[-3:])
        raise RnalocError(f"{os.path.basename(argv[0])} failed (exit code {proc.returncode}): {tail}")
    return proc.stdout


def _common_args(identity, threads, memory_mb, both_strands, min_length, extra):
    args = [
        "-c", str(identity), "-n", str(word_size(identity)), "-d", "0",
        "-M", str(memory_mb), "-T", str(threads or 0), "-l", str(min_length),
        "-r", "1" if both_strands else "0",
    ]
    return args + list(extra or ())


@dataclass
class Clustering:
    """``representative[name]``: the representative of each sequence's cluster."""

    representative: dict
    too_short: list  # names cd-hit-est discarded (<= min_length nt), kept as singletons


def clusters_to_representatives(clusters):
    rep = {}
    for members in clusters:
        head = next(m.name for m in members if m.representative)
        for m in members:
            rep[m.name] = head
    return rep


def cluster(seqs, identity=0.8, *, threads=None, memory_mb=0, both_strands=True,
            min_length=DEFAULT_MIN_LENGTH, extra=(), save_clstr=None):
    """Cluster ``seqs`` (name -> sequence) with cd-hit-est; names must have no white space."""
    program = find_program("cd-hit-est")
    with temporary_folder("rnaloc-cdhit-") as tmp:
        fasta = os.path.join(tmp, "in.fa")
        _write_fasta(seqs, fasta)
        _run([program, "-i", fasta, "-o", os.path.join(tmp, "out")]
             + _common_args(identity, threads, memory_mb, both_strands, min_length, extra), tmp)
        clstr = os.path.join(tmp, "out.clstr")
        clusters = parse_clstr(clstr)
        if save_clstr is not None:
            copy_clstr(clstr, save_clstr)
    return clustering_from(clusters, seqs, "cd-hit-est output")


def copy_clstr(source, destination):
    """Copy a ``.clstr`` file to ``destination`` atomically."""
    with atomic_path(destination) as tmp:
        try:
            shutil.copyfile(source, tmp)
        except OSError as exc:
            raise RnalocError(f"{destination}: cannot write: {exc.strerror or exc}") from None


def clustering_from(clusters, seqs, what):
    """Check ``clusters`` against ``seqs``; sequences missing from them become singletons."""
    rep = clusters_to_representatives(clusters)
    unknown = [name for name in rep if name not in seqs]
    if unknown:
        raise RnalocError(f"{what} names {len(unknown)} sequence(s) not in the input, e.g. {unknown[0]!r}")
    too_short = [name for name in seqs if name not in rep]
    for name in too_short:
        rep[name] = name
    return Clustering(rep, too_short)


def hits_2d(db1, db2, identity=0.8, *, threads=None, memory_mb=0, both_strands=True,
            min_length=DEFAULT_MIN_LENGTH, extra=()):
    """Names in ``db2`` that cd-hit-est-2d puts in a cluster of a ``db1`` sequence.

    cd-hit-est-2d only finds db2 sequences no longer than their db1 partner,
    so callers wanting both directions run it twice.
    Returns ``{db2 name: db1 name}``.
    """
    program = find_program("cd-hit-est-2d")
    with temporary_folder("rnaloc-cdhit-") as tmp:
        f1, f2 = os.path.join(tmp, "db1.fa"), os.path.join(tmp, "db2.fa")
        # db1 and db2 may share ids: prefix them so the .clstr names stay apart
        _write_fasta({"1|" + k: v for k, v in db1.items()}, f1)
        _write_fasta({"2|" + k: v for k, v in db2.items()}, f2)
        _run([program, "-i", f1, "-i2", f2, "-o", os.path.join(tmp, "out")]
             + _common_args(identity, threads, memory_mb, both_strands, min_length, extra), tmp)
        clusters = parse_clstr(os.path.join(tmp, "out.clstr"))
    hits = {}
    for members in clusters:
        head = next(m.name for m in members if m.representative)
        for m in members:
            if m.name.startswith("2|") and head.startswith("1|"):
                hits[m.name[2:]] = head[2:]
    return hits
