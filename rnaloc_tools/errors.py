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
