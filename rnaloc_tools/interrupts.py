"""Interrupts (Ctrl-C, SIGTERM) that are never lost.

Python runs a signal handler between two bytecodes of the main thread, wherever
that is: inside a weakref callback of the import system, a ``__del__`` method, a
garbage-collector pass. An exception the handler raises there is printed as
"Exception ignored in ..." and dropped, and the program runs on as if no signal
had come. A scheduler's SIGTERM that lands there would let the job finish, write
its outputs and exit 0.

So the handlers here first *record* the interrupt, then raise. Whatever becomes
of the exception, the record stays:

* :mod:`rnaloc_tools.fileio` refuses to put an output in place once an interrupt
  is recorded (a transaction's commit, an atomic rename): it removes the
  temporary files and raises ``KeyboardInterrupt`` itself;
* the command line exits 130 when it finds one, before the tool runs or after.

SIGTERM is handled so (and :func:`install` is called by the CLI only): before
the tool runs nothing was written, so it exits 130 at once; while it runs it
becomes ``KeyboardInterrupt``, which removes the temporary files on its way out;
a second SIGTERM is ignored so that this cleanup is not cut short. Ctrl-C keeps
Python's own behaviour (``KeyboardInterrupt``, each time) and is recorded too.

The library never installs a handler; a program that imports it keeps its own.
"""

import contextlib
import signal
import sys

_state = {"signal": None, "running": False}


def pending():
    """Whether an interrupt (SIGINT or SIGTERM) came since :func:`install` (or :func:`reset`)."""
    return _state["signal"] is not None


def check():
    """Raise ``KeyboardInterrupt`` if an interrupt is recorded (its own exception may have been dropped)."""
    if pending():
        raise KeyboardInterrupt


@contextlib.contextmanager
def running():
    """The tool's work: from here a SIGTERM raises ``KeyboardInterrupt`` (cleanup) instead of exiting."""
    _state["running"] = True
    try:
        yield
    finally:
        _state["running"] = False


def _on_sigterm(signum, frame):
    if _state["signal"] == signal.SIGTERM:
        return  # the second one: the cleanup and the exit go on (SIG_IGN is set, this is a fallback)
    _state["signal"] = signal.SIGTERM
    # ignored from now on: Python resets its own handlers to the default (terminate, 143) while it
    # shuts down, so a second SIGTERM then would cut the exit short; an ignored signal stays ignored
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if not _state["running"]:
        sys.exit(130)
    raise KeyboardInterrupt


def _on_sigint(signum, frame):
    if _state["signal"] is None:
        _state["signal"] = signal.SIGINT
    signal.default_int_handler(signum, frame)


def install():
    """Install the handlers (the CLI's main thread only). Safe to call again: a recorded interrupt,
    and a handler someone else installed, are left as they are."""
    try:
        if _state["signal"] is None and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, _on_sigterm):
            signal.signal(signal.SIGTERM, _on_sigterm)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread (the CLI imported by a threaded program): leave signals alone
        pass


def reset():
    """Forget a recorded interrupt (a process that runs the CLI again, as the tests do)."""
    _state["signal"] = None
