"""Errors that reach the user as one clear line and exit code 1."""


class RnalocError(Exception):
    """A problem with the user's data, files or environment (exit code 1).

    The message is shown as it is, on one line, without a traceback.
    """

    exit_code = 1


class InputError(RnalocError):
    """A bad input file or record: the message names the file, the record and the problem."""

    def __init__(self, source, problem, record=None, line=None):
        where = str(source)
        if line is not None:
            where += f":{line}"
        if record is not None:
            where += f": record {record!r}"
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.record = record
        self.problem = problem


class MissingDependencyError(RnalocError):
    """An optional dependency or external program is not installed."""


class OutputConflict(RnalocError):
    """An output that is the same file as an input or as another output: a usage error (exit code 2),
    found before any work."""

    exit_code = 2


def unsafe_pickle_problem(exc, what):
    """The one-line problem for a file ``torch.load(weights_only=True)`` refused, or None.

    torch's own message advises rerunning with ``weights_only=False``, which runs
    whatever code the file holds: never repeat that; name what the file pickles.
    """
    import re

    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return (f"not {what}: it pickles {found.group(1)}, which {what} must not "
                "(nothing that runs code is unpickled)")
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)\n", text + "\n")
    if detail:
        return f"truncated, corrupted or not {what} ({detail.group(1).strip()})"
    if "weights_only" in text:
        return f"not {what}: it holds objects other than tensors and plain data (nothing that runs code is unpickled)"
    return None
