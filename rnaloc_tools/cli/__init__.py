"""The ``rnaloc`` command: a Click group of single-purpose tools, in pipeline order.

Each command lives in its own module here (``cli/embed.py`` ...), converts its
options and calls one plain library function. Errors are mapped to exit codes
once, in :class:`PipelineGroup`: 1 for bad data or I/O (one line, no
traceback unless ``--debug``), 2 for usage errors (Click), 130 for Ctrl-C.
"""

import importlib
import importlib.util
import logging
import signal
import sys

import click

from .. import __version__
from ..errors import RnalocError

#: Commands in the order of the pipeline; ``rnaloc --help`` lists them so.
COMMANDS = ("curate", "dedup", "split", "embed", "train", "evaluate", "export-onnx", "predict", "motifs")

log = logging.getLogger("rnaloc")


def _module_name(command):
    return f"{__name__}.{command.replace('-', '_')}"


class PipelineGroup(click.Group):
    """Lists commands in pipeline order, loads them lazily, and maps errors to exit codes."""

    def list_commands(self, ctx):
        return [c for c in COMMANDS if importlib.util.find_spec(_module_name(c)) is not None]

    def get_command(self, ctx, name):
        if name not in COMMANDS or importlib.util.find_spec(_module_name(name)) is None:
            return None
        module = importlib.import_module(_module_name(name))
        return getattr(module, "command")

    def invoke(self, ctx):
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except RnalocError as exc:
            if debug:
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
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if debug:
                raise
            log.error("unexpected error: %s: %s (rerun with --debug for a traceback)", type(exc).__name__, exc)
            sys.exit(1)


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


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (a scheduler's kill) cleans up like Ctrl-C


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
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)


def main():
    cli(prog_name="rnaloc")
