"""The ``rnaloc`` command: a Click group of single-purpose tools, in pipeline order.

Each command lives in its own module here (``cli/embed.py`` ...), converts its
options and calls one plain library function. What every tool shares lives
here, once:

* errors are mapped to exit codes in :class:`PipelineGroup`: 1 for bad data or
  I/O (one line, no traceback unless ``--debug``), 2 for usage errors (Click,
  and an output that is an input), 130 for Ctrl-C and SIGTERM;
* every command is a :class:`Tool`: its input and output parameters (typed
  with :class:`~._util.InputFile`, :class:`~._util.OutputFile`,
  :class:`~._util.OutputFolder`) are checked before any work (an output that
  is the same file as an input or as another output is refused; output folders
  must be writable; names must fit NAME_MAX), and its outputs are committed
  together at the end (:func:`rnaloc_tools.fileio.output_transaction`): all or
  none;
* ``-v`` and ``--debug`` work before or after the tool name;
* library warnings (torch, NumPy, scikit-learn) go to the log at debug level
  (``-v`` shows them), never past the one-line promise.
"""

import sys

from .. import interrupts

# first thing, before the imports below (click, then the tool's own: torch, onnxruntime): a SIGTERM
# in the first second of a run exits 130, as later ones do, instead of 143
interrupts.install()

import errno  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import logging  # noqa: E402
import warnings  # noqa: E402

import click  # noqa: E402

from .. import __version__
from ..errors import RnalocError

#: Commands in the order of the pipeline; ``rnaloc --help`` lists them so.
COMMANDS = ("curate", "dedup", "split", "embed", "train", "evaluate", "export-onnx", "predict", "motifs")

log = logging.getLogger("rnaloc")

_DEBUG = "rnaloc.debug"  # ctx.meta key (shared by the group's and the command's contexts)


def _module_name(command):
    return f"{__name__}.{command.replace('-', '_')}"


def _debug(ctx):
    return bool(ctx.params.get("debug")) or bool(ctx.meta.get(_DEBUG))


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Library warnings go to the log at debug level (shown with -v), not to the user's stderr."""
    log.debug("%s: %s (%s:%s)", category.__name__, str(message).replace("\n", " "), filename, lineno)


class PipelineGroup(click.Group):
    """Lists commands in pipeline order, loads them lazily, and maps errors to exit codes."""

    def list_commands(self, ctx):
        return [c for c in COMMANDS if importlib.util.find_spec(_module_name(c)) is not None]

    def get_command(self, ctx, name):
        if name not in COMMANDS or importlib.util.find_spec(_module_name(name)) is None:
            return None
        module = importlib.import_module(_module_name(name))
        return getattr(module, "command")

    def main(self, *args, **kwargs):
        interrupts.install()  # again: a program may import this module first and run the group later
        if interrupts.pending():
            sys.exit(130)  # came while Python was loading, its SystemExit dropped: nothing was written
        try:
            result = super().main(*args, **kwargs)
        except SystemExit as exc:
            if exc.code in (0, None) and interrupts.pending():
                sys.exit(130)  # an interrupt whose exception was dropped (--help, --version, a finished run)
            raise
        if interrupts.pending():
            sys.exit(130)
        return result

    def invoke(self, ctx):
        try:
            with interrupts.running(), warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)  # a Tool's commit raises KeyboardInterrupt for a dropped interrupt
        except RnalocError as exc:
            if _debug(ctx):
                raise
            log.error("%s", str(exc).replace("\n", " "))
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            log.error("interrupted")
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except BrokenPipeError:
            raise  # click exits quietly on a closed stdout (| head)
        except OSError as exc:
            if _debug(ctx):
                raise
            if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                # the writers name their file; this is the last line of defence for any other write
                log.error("no space left on device%s", f" writing {exc.filename}" if exc.filename else "")
            else:
                log.error("unexpected error: %s: %s (rerun with --debug for a traceback)", type(exc).__name__, exc)
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if _debug(ctx):
                raise
            log.error("unexpected error: %s: %s (rerun with --debug for a traceback)", type(exc).__name__, exc)
            sys.exit(1)


def _late_verbose(ctx, param, value):
    if value:
        log.setLevel(logging.DEBUG)


def _late_debug(ctx, param, value):
    if value:
        ctx.meta[_DEBUG] = True


class Tool(click.Command):
    """A command of the suite: inputs and outputs checked before the work, outputs committed together."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # the group's -v/--debug, also accepted after the tool name (`rnaloc predict x.fa -v`)
        self.params.append(click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_late_verbose,
                                        help="More detail on stderr (as `rnaloc -v COMMAND`)."))
        self.params.append(click.Option(["--debug"], is_flag=True, expose_value=False, callback=_late_debug,
                                        help="Tracebacks instead of one-line errors (as `rnaloc --debug COMMAND`)."))

    def io_params(self, ctx):
        """{role: [(label, path)]} of this run's typed path parameters (role: input, output, folder)."""
        found = {"input": [], "output": [], "folder": []}
        for param in self.params:
            role = getattr(param.type, "role", None)
            value = ctx.params.get(param.name)
            if role is None or value is None:
                continue
            label = param.opts[-1] if isinstance(param, click.Option) else param.human_readable_name
            for path in value if isinstance(value, (tuple, list)) else [value]:
                found[role].append((label, path))
        return found

    def invoke(self, ctx):
        from ..fileio import output_transaction

        with output_transaction() as outputs:
            found = self.io_params(ctx)
            for label, path in found["input"]:
                outputs.add_inputs([path], label)
            outputs.declare(files=found["output"], folders=found["folder"])
            return super().invoke(ctx)


def tool(name):
    """``@tool("embed")``: a :class:`Tool` command of the suite."""
    return click.command(name=name, cls=Tool)


class _Formatter(logging.Formatter):
    def __init__(self, prog):
        super().__init__()
        self.prog = prog

    def format(self, record):
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"{self.prog}: {level}{record.getMessage()}"


def _setup_logging(prog, verbose):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(prog))
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG if verbose > 0 else logging.INFO)


@click.group(cls=PipelineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="rnaloc-tools")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (repeat for more).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx, verbose, debug):
    """Predict the subcellular localization of lncRNAs, miRNAs and circRNAs (RNALoc-LM).

    Pipeline: curate -> dedup -> split -> embed -> train -> evaluate ->
    export-onnx -> predict -> motifs. Run `rnaloc COMMAND --help` for each tool.
    """
    _setup_logging(f"rnaloc {ctx.invoked_subcommand}" if ctx.invoked_subcommand else "rnaloc", verbose)


def main():
    cli(prog_name="rnaloc")  # the handlers were installed when this module was imported, and again in .main
