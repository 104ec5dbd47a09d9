"""rnaloc train: dataset TSV + embeddings NPZ -> model checkpoint (.pt) and a report folder."""

import json

import click

from ..model.losses import LOSSES
from ..devices import resolve_device
from ..model.training import TrainConfig, train_to_files
from . import tool
from ._util import FiniteFloatRange, InputFile, OutputFolder, force_option, output_option, seed_option, set_threads


def _hparams(ctx, param, value):
    try:
        out = json.loads(value) if value else {}
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    if not isinstance(out, dict):
        raise click.BadParameter("give a JSON object, e.g. '{\"lstm_layers\": 2}'")
    reserved = sorted(set(out) & {"dim", "n_classes"})
    if reserved:
        raise click.BadParameter(f"{', '.join(reserved)} cannot be set: the embeddings give dim and the rna_type "
                                 "gives n_classes")
    return out


@tool("train")
@click.argument("dataset", metavar="DATASET.tsv", type=InputFile())
@click.argument("embeddings", metavar="EMBEDDINGS.npz...", nargs=-1, required=True, type=InputFile(allow_dash=False))
@output_option(help="Model checkpoint to write (.pt).")
@click.option("--arch", default="rnaloc", show_default=True,
              help="Architecture: rnaloc (the paper's head), transformer (the paper's baseline), or another registered one.")
@click.option("--hparams", callback=_hparams, default=None, help="Architecture hyperparameters as JSON, e.g. '{\"lstm_layers\": 2}'.")
@click.option("--folds", type=click.IntRange(min=0), default=5, show_default=True,
              help="Cross-validation folds (0: no cross-validation; a `fold` column in the dataset wins).")
@click.option("--epochs", type=click.IntRange(min=1), default=80, show_default=True, help="Most epochs per fit.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=FiniteFloatRange(min=0, min_open=True), default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--weight-decay", type=FiniteFloatRange(min=0), default=1e-4, show_default=True)
@click.option("--loss", type=click.Choice(LOSSES), default="auto", show_default=True,
              help="auto: focal (gamma 1.5, class-balanced alpha) for lncRNA, cross-entropy otherwise.")
@click.option("--patience", type=click.IntRange(min=1), default=30, show_default=True,
              help="Early stopping: epochs without a better validation loss.")
@click.option("--max-len", type=click.IntRange(min=1), default=None,
              help="Use only the first N positions of longer sequences (recorded in the model; predict does the same).")
@click.option("--report-dir", type=OutputFolder(file_okay=False), default=None,
              help="Folder for cv_metrics.tsv, cv_predictions.tsv, learning_curves.png, confusion_matrix.png "
              "[default: OUTPUT without .pt, plus .report].")
@seed_option
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to train: cpu (bit-for-bit repeatable with the same --seed), cuda (mixed precision: "
              "bf16 where the GPU has it, else fp16 with loss scaling; repeatable only up to GPU rounding), "
              "or auto (cuda when torch sees a GPU). Batches are read from the embeddings' memory map either way.")
@click.option("-t", "--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPU threads for torch (the head's small LSTM steps gain little from more, and lose much on a busy machine).")
@force_option
def command(dataset, embeddings, output, arch, hparams, folds, epochs, batch_size, lr, weight_decay, loss, patience,
            max_len, report_dir, seed, device, threads, force):
    """Train a localization model on DATASET.tsv (one rna_type) with its EMBEDDINGS.npz shards.

    Runs stratified k-fold cross-validation (grouped by the `cluster` column when
    present; rows with split=test are held out), then trains the final model on
    all non-test rows. The same seed and -t give the same model, bit for bit, on CPU.

    \b
    Examples:
      rnaloc embed train.tsv --encoder one-hot -o train.npz
      rnaloc train train.tsv train.npz -o lncRNA.pt --seed 1
      rnaloc train train.tsv a.npz b.npz -o m.pt --arch transformer --folds 0
    """
    if output == "-":
        raise click.BadParameter("a checkpoint cannot be written to stdout; give a file name", param_hint="--output")
    if folds == 1:
        raise click.BadParameter("give 0 (no cross-validation) or 2 or more", param_hint="--folds")
    set_threads(threads)
    cfg = TrainConfig(arch=arch, hparams=hparams, folds=folds, epochs=epochs, batch_size=batch_size, lr=lr,
                      weight_decay=weight_decay, loss=loss, patience=patience, max_len=max_len, seed=seed,
                      device=resolve_device(device))
    train_to_files(dataset, list(embeddings), output, cfg, report_dir=report_dir, force=force)
