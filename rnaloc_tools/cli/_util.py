"""Options shared by several commands, defined once."""

import math

import click

from ..embed import LONG_POLICIES
from ..encoders import ENCODER_NAMES

WEIGHTS_ENV = "RNALOC_RNAFM_WEIGHTS"


def _compose(*decorators):
    def apply(func):
        for deco in reversed(decorators):
            func = deco(func)
        return func

    return apply


class InputFile(click.Path):
    """A path the tool reads. :class:`~rnaloc_tools.cli.Tool` refuses an output that is the same file."""

    role = "input"

    def __init__(self, dir_okay=False, allow_dash=True, **kwargs):
        super().__init__(dir_okay=dir_okay, allow_dash=allow_dash, **kwargs)


class OutputFile(click.Path):
    """A file the tool writes: checked before the work, committed with the tool's other outputs."""

    role = "output"

    def __init__(self, dir_okay=False, allow_dash=True, **kwargs):
        super().__init__(dir_okay=dir_okay, allow_dash=allow_dash, **kwargs)


class OutputFolder(click.Path):
    """A folder the tool writes files into (made if missing): checked for writability before the work."""

    role = "folder"


class FiniteFloatRange(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses NaN and infinities (NaN passes every comparison)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number (allowed: {self._describe_range()})", param, ctx)
        return number


#: Seeds feed numpy and scikit-learn, which take 0 .. 2**32 - 1.
SEED_MAX = 2**32 - 1


def input_argument(name="input"):
    return click.argument(name, metavar=name.upper(), type=InputFile())


def output_option(required=True, help="Output file."):
    return click.option("-o", "--output", required=required, type=OutputFile(), help=help)


force_option = click.option("--force", is_flag=True, help="Overwrite an existing output.")
seed_option = click.option("--seed", type=click.IntRange(0, SEED_MAX), default=0, show_default=True,
                           help="Random seed.")
threads_option = click.option(
    "-t", "--threads", type=click.IntRange(min=1), default=None, help="CPU threads (default: all available)."
)

encoder_choice = click.option(
    "--encoder", type=click.Choice(ENCODER_NAMES), default="rna-fm", show_default=True,
    help="rna-fm: the frozen RNA-FM language model (640-d); one-hot: A/C/G/U channels (4-d).",
)

#: How sequences are encoded, once the encoder is known: weights, long-sequence
#: policy, batching, device (predict takes the encoder from the model).
encoding_options = _compose(
    click.option(
        "--weights", type=InputFile(dir_okay=True, allow_dash=False), envvar=WEIGHTS_ENV, show_envvar=True,
        help="RNA-FM weights, local, never downloaded: the original RNA-FM_pretrained.pth, or a "
        "multimolecule/rnafm download (its folder, or its model.safetensors with config.json beside it).",
    ),
    click.option(
        "--long", "long_policy", type=click.Choice(LONG_POLICIES), default="truncate", show_default=True,
        help="Sequences longer than the encoder's limit (RNA-FM: 1022 nt): keep the first 1022 nt "
        "(as the paper), or embed overlapping windows covering the whole sequence.",
    ),
    click.option(
        "--toks-per-batch", type=click.IntRange(min=1), default=None,
        help="Token budget of one batch (sequences are sorted by length and packed) "
        "[default: RNA-FM 16384 on CUDA, 4096 on CPU (keeps memory small at the same speed); one-hot 16384].",
    ),
    click.option(
        "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
        help="Where RNA-FM runs (auto: CUDA when available).",
    ),
    click.option(
        "--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto", show_default=True,
        help="RNA-FM compute precision. auto: fp16 on CUDA; on CPU bf16 only where the CPU has native bf16 "
        "(AVX512-BF16 or AMX), else fp32 (bf16 is emulated there: about 6x slower; asking for it warns).",
    ),
    threads_option,
)

#: embed: the encoder and how it runs.
encoder_options = _compose(encoder_choice, encoding_options)


def set_threads(threads):
    if threads:
        import torch

        torch.set_num_threads(threads)
