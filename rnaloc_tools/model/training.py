"""Training the heads: k-fold cross-validation, then a final model (the library behind ``rnaloc train``).

Procedure (every fit, fold models and the final model alike):

* Adam (lr 1e-3, weight decay 1e-4); ReduceLROnPlateau (min, factor 0.5, patience 20)
  on the validation loss; gradient-norm clipping at 1.0 after every backward pass;
  up to ``epochs`` epochs with early stopping on the validation loss (``patience``
  epochs without improvement); the weights of the best validation epoch are kept.
* Focal loss (class-balanced alpha, gamma 1.5) for lncRNA, cross-entropy otherwise.
* Length-bucketed batches (similar lengths together; padding is masked anyway), at
  most ``batch_size`` sequences and, for the heads with attention (quadratic in
  length), :data:`~.batching.MAX_PAIRS` batch x length^2: long sequences train in
  smaller batches; ``max_len`` crops them, as the paper's 1022-nt limit did.

Splits: rows whose ``split`` column is ``test`` never take part in training; when
there are any, the final model is scored on them. The other rows are cut into
``folds`` stratified folds (``StratifiedGroupKFold`` by ``cluster`` when the column
exists, so a cluster never straddles folds), or the dataset's own ``fold`` column
is used when present. In each fold the held-out fold is the test part and a
stratified (grouped) tenth of the rest is the validation split for early stopping
and the learning-rate schedule, so the fold metrics never see data that steered
training. The final model is trained the same way on all non-test rows (a tenth
held out for early stopping), not picked among the fold models.

Baselines: on every fold, the majority-class and the length-only baselines
(:mod:`.baselines`) are fitted on the fold's training part (the validation tenth
included) and scored on its held-out part, beside the model; per fold, the
paired difference model minus length (accuracy, MCC, AUROC) is recorded too. The
length is the whole sequence's, not the ``max_len`` crop.

Memory: the embeddings are never loaded as a whole. :class:`StoredMatrices` keeps
ids and lengths, and each batch reads its rows from the NPZ memory map when it is
built (the store releases the pages it read), so peak memory does not grow with
the number of sequences. Device: ``cfg.device`` (``cpu`` or ``cuda``); on CUDA the
forward passes run under autocast (bf16 where supported, else fp16 with a
gradient scaler), the loss and the weights stay fp32.

With the same seed and inputs, CPU training is bit-for-bit repeatable:
:func:`init` seeds torch and numpy generators and turns on
``torch.use_deterministic_algorithms``; every fit re-seeds from (seed, run).
"""

import copy
import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from .. import CLASSES
from ..errors import InputError, RnalocError
from ..formats import EmbeddingStore, read_dataset
from ..formats.npz import ENCODER_KEYS
from ..progress import progress
from .batching import bucket_batches, pad_batch, pair_cap
from .losses import default_loss, make_loss
from .baselines import baseline_predictions, fit_baselines
from .metrics import DIFFERENCE_METRICS, compute_metrics, predicted_class, summarise_folds
from .plots import save_png
from .registry import build_model

log = logging.getLogger("rnaloc")

#: Encoder metadata carried from the embeddings into the checkpoint and the ONNX model.
ENCODER_META_KEYS = ENCODER_KEYS + ("max_length", "long_policy")


@dataclass
class TrainConfig:
    arch: str = "rnaloc"
    hparams: dict = field(default_factory=dict)
    folds: int = 5
    epochs: int = 80
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    loss: str = "auto"
    patience: int = 30
    lr_patience: int = 20
    lr_factor: float = 0.5
    clip: float = 1.0
    val_fraction: float = 0.1
    max_len: int = None
    seed: int = 0
    device: str = "cpu"


def init(seed, deterministic=True, device="cpu"):
    """Seed torch (CPU and CUDA) and make its algorithms deterministic.

    On CUDA some kernels have no deterministic version (the backward of the
    gathers that reverse sequences within their lengths adds atomically), so
    there determinism is requested with ``warn_only``: CUDA runs are repeatable
    only up to those kernels and mixed-precision rounding, not bit for bit.
    """
    torch.manual_seed(seed)
    if device == "cuda":
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    else:
        torch.use_deterministic_algorithms(deterministic)


def autocast_dtype(device):
    """Mixed precision of a training step: bf16 on a GPU that has it, else fp16 (with loss scaling); none on CPU."""
    if device != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device):
    import contextlib

    dtype = autocast_dtype(device)
    return torch.autocast(device_type="cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()


class StoredMatrices:
    """The embedding matrices of the dataset rows, read from the NPZ memory map when a batch needs them.

    Behaves as a list of (L_i, D) float16 arrays (cropped to ``max_len``), but
    holds only the ids and lengths: a batch's rows are read from the shards'
    memory maps as it is built (:meth:`EmbeddingStore.get` releases the
    mapped pages it read, so they stay in the page cache, not in the process),
    so memory does not grow with the number of sequences.
    """

    def __init__(self, store, ids, max_len=None):
        self.store = store
        self.ids = list(ids)
        full = np.array([store.length(rid) for rid in self.ids], dtype=np.int64)
        self.lengths = np.minimum(full, max_len) if max_len else full
        self.cropped = int((full > self.lengths).sum())
        self.dim = store.dim

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return self.store.get(self.ids[i], dtype=np.float16, rows=int(self.lengths[i]))


@dataclass
class TrainingData:
    """The training rows of one rna_type, with their embeddings (float16, cropped to max_len)."""

    ids: list
    labels: np.ndarray  # (N,) int class index
    matrices: list  # N arrays (L_i, D) float16
    groups: np.ndarray  # (N,) cluster ids, or None
    folds: np.ndarray  # (N,) given fold labels, or None
    is_test: np.ndarray  # (N,) bool
    rna_type: str
    classes: tuple
    encoder: dict
    cropped: int = 0
    sequences: list = None  # (N,) the dataset's sequences (applicability domain; whole lengths for the length baseline)

    @property
    def lengths(self):
        stored = getattr(self.matrices, "lengths", None)
        return stored if stored is not None else np.array([m.shape[0] for m in self.matrices])

    @property
    def dim(self):
        stored = getattr(self.matrices, "dim", None)
        return stored if stored is not None else self.matrices[0].shape[1]


#: Longest sequence an attention head trains on: its attention matrices grow with the square
#: of the length (8192 positions: ~1.3 GB per head set forward, several times that with gradients).
MAX_ATTENTION_LENGTH = 8192


def check_attention_length(model, data, arch):
    """Refuse, before training, a sequence too long for a head whose memory is quadratic in length."""
    if not getattr(model, "quadratic_in_length", False) or not data.matrices:
        return
    lengths = data.lengths
    longest = int(lengths.max())
    if longest > MAX_ATTENTION_LENGTH:
        rid = data.ids[int(lengths.argmax())]
        gib = 5 * 4 * longest**2 / 2**30  # 5 heads x float32 x L^2, forward only
        raise RnalocError(
            f"{rid!r} has {longest} positions: the {arch} head's attention grows with the square of the "
            f"length (about {gib:,.0f} GiB for it alone); crop with --max-len (e.g. 1022, as the paper did; "
            f"at most {MAX_ATTENTION_LENGTH}) or use --arch kmer"
        )


def _name_some(ids, n=3):
    ids = list(ids)
    more = f" and {len(ids) - n} more" if len(ids) > n else ""
    return ", ".join(repr(i) for i in ids[:n]) + more


#: Fewest training rows per class: the rest and a stratified validation part both need one.
MIN_CLASS_ROWS = 2


def load_training_data(dataset_path, embedding_paths, *, folds=5, max_len=None):
    """Read the dataset TSV and its embeddings; check everything a training run needs."""
    table = read_dataset(dataset_path)
    df = table.df
    source = table.source
    types = sorted(set(df["rna_type"]))
    if len(types) != 1:
        raise InputError(source, f"one model per rna_type, but the dataset has {', '.join(types)}: split it by rna_type")
    rna_type = types[0]
    classes = CLASSES[rna_type]
    store = EmbeddingStore(embedding_paths)
    npz_names = ", ".join(s.path for s in store.shards)
    missing = [rid for rid in df["id"] if rid not in store]
    if missing:
        raise InputError(
            npz_names, f"{len(missing)} dataset id(s) have no embedding: {_name_some(missing)} (embed the dataset first)"
        )
    is_test = (df["split"].str.strip().str.lower() == "test").to_numpy() if "split" in df.columns else np.zeros(len(df), bool)
    labels = np.array([classes.index(lab) for lab in df["label"]])
    train_labels = labels[~is_test]
    counts = np.bincount(train_labels, minlength=len(classes))
    present = [c for c, n in zip(classes, counts) if n]
    if len(present) < 2:
        raise InputError(source, f"only one class ({', '.join(present) or 'none'}) among the training rows: a model needs both {' and '.join(classes)}")
    has_folds = "fold" in df.columns and (df["fold"].str.strip()[~is_test] != "").all()
    for cls, n in zip(classes, counts):
        if n < MIN_CLASS_ROWS:  # early stopping holds out a stratified validation part: one row cannot be split
            raise InputError(source, f"class {cls!r} has {n} training sample(s): training needs at least "
                             f"{MIN_CLASS_ROWS} per class (one for a validation part, for early stopping)")
    if folds and not has_folds:
        for cls, n in zip(classes, counts):
            if n < folds:
                raise InputError(source, f"class {cls!r} has {n} training sample(s), fewer than the {folds} folds: use fewer --folds")
    meta = store.meta
    policy = str(meta.get("long_policy", "none"))
    limit = meta.get("max_length")
    for rid, seq in zip(df["id"], df["sequence"]):
        n = store.length(rid)
        truncated = policy == "truncate" and limit and len(seq) > int(limit) and n == int(limit)
        if n != len(seq) and not truncated:
            raise InputError(npz_names, f"the embedding has {n} rows but the dataset sequence has {len(seq)} nt: embeddings of another sequence?", rid)
    matrices = StoredMatrices(store, df["id"], max_len)  # read batch by batch, never all at once
    cropped = matrices.cropped
    groups = df["cluster"].to_numpy() if "cluster" in df.columns else None
    fold_col = df["fold"].to_numpy() if has_folds else None
    encoder = {k: meta.get(k) for k in ENCODER_META_KEYS}
    return TrainingData(list(df["id"]), labels, matrices, groups, fold_col, is_test, rna_type, tuple(classes), encoder, cropped,
                        list(df["sequence"]))


def _split(labels, groups, n_splits, seed):
    """[(train, held-out)] index pairs: stratified, grouped when groups are given."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small classes: sklearn warns, the split still works
        if groups is not None:
            splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            return list(splitter.split(np.zeros(len(labels)), labels, groups))
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(labels)), labels))


def outer_folds(data, n_folds, seed):
    """[(name, train indices, test indices)] over the non-test rows."""
    pool = np.flatnonzero(~data.is_test)
    if data.folds is not None:
        names = sorted(set(data.folds[pool]), key=lambda f: (len(f), f))
        if len(names) < 2:
            raise RnalocError("the dataset's fold column has a single fold: cross-validation needs two or more")
        log.info("using the dataset's own fold column (%d folds)", len(names))
        return [(str(f), pool[data.folds[pool] != f], pool[data.folds[pool] == f]) for f in names]
    groups = data.groups[pool] if data.groups is not None else None
    try:
        splits = _split(data.labels[pool], groups, n_folds, seed)
    except ValueError as exc:
        raise RnalocError(f"cannot make {n_folds} folds: {exc}") from None
    return [(str(i + 1), pool[tr], pool[te]) for i, (tr, te) in enumerate(splits)]


def inner_validation(data, idx, val_fraction, seed):
    """Split ``idx`` into (train, validation): a stratified (grouped) ~``val_fraction``."""
    labels = data.labels[idx]
    smallest = np.bincount(labels, minlength=len(data.classes)).min()
    n_splits = int(max(2, min(round(1 / val_fraction), max(smallest, 2))))
    groups = data.groups[idx] if data.groups is not None else None
    if groups is not None and len(set(groups)) < n_splits:
        groups = None
    try:
        tr, va = _split(labels, groups, n_splits, seed)[0]
    except ValueError:
        counts = ", ".join(f"{c} {n}" for c, n in zip(data.classes, np.bincount(labels, minlength=len(data.classes))))
        raise RnalocError(f"too few rows to hold out a validation part for early stopping ({counts} in this "
                          "part of the data): use fewer --folds (or --folds 0), or more sequences") from None
    return idx[tr], idx[va]


def _cap(model):
    return pair_cap(getattr(model, "quadratic_in_length", False))


def _device_of(model):
    return next(model.parameters()).device


def _batches_to_tensors(data, idx, batch, device="cpu"):
    """One batch, padded (B, L, D) float32, its lengths and labels, on ``device``.

    The rows are read from the embeddings' memory map now (in length-sorted
    order within the batch); on CUDA the batch goes through pinned memory.
    """
    x, lengths = pad_batch([data.matrices[i] for i in idx[batch]])
    tensors = (torch.from_numpy(x), torch.from_numpy(lengths), torch.from_numpy(data.labels[idx[batch]]))
    if torch.device(device).type != "cuda":
        return tensors
    return tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)


@torch.no_grad()
def predict_indices(model, data, idx, batch_size):
    """Class probabilities (len(idx), C) and the mean loss-free logits, in the order of ``idx``."""
    model.eval()
    device = _device_of(model)
    probs = np.zeros((len(idx), len(data.classes)), dtype=np.float32)
    for batch in bucket_batches(data.lengths[idx], batch_size, max_pairs=_cap(model)):
        x, lengths, _ = _batches_to_tensors(data, idx, batch, device)
        with _autocast(device.type):
            logits, _ = model(x, lengths)
        probs[batch] = torch.softmax(logits.float(), dim=1).cpu().numpy()
    return probs


@torch.no_grad()
def _eval_loss(model, loss_fn, data, idx, batch_size):
    model.eval()
    device = _device_of(model)
    total, correct = 0.0, 0
    for batch in bucket_batches(data.lengths[idx], batch_size, max_pairs=_cap(model)):
        x, lengths, y = _batches_to_tensors(data, idx, batch, device)
        with _autocast(device.type):
            logits, _ = model(x, lengths)
        logits = logits.float()
        total += float(loss_fn(logits, y)) * len(batch)
        correct += int((logits.argmax(1) == y).sum())
    return total / len(idx), correct / len(idx)


@dataclass
class Fit:
    model: torch.nn.Module
    hp: object
    history: list
    best_epoch: int


def fit(data, train_idx, val_idx, cfg, run, label):
    """Train one model on ``train_idx``, early-stopped on ``val_idx``; seeded by (cfg.seed, run)."""
    device = cfg.device or "cpu"
    init(cfg.seed * 1000 + run, device=device)
    rng = np.random.default_rng([cfg.seed, run])
    model, hp = build_model(cfg.arch, dim=data.dim, n_classes=len(data.classes), **cfg.hparams)
    model.to(device)
    counts = np.bincount(data.labels[train_idx], minlength=len(data.classes))
    loss_name = default_loss(data.rna_type) if cfg.loss == "auto" else cfg.loss
    loss_fn = make_loss(loss_name, counts).to(device)
    # fp16 needs loss scaling (small gradients underflow); bf16 and fp32 do not
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype(device) == torch.float16)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience)
    best = (float("inf"), 0, copy.deepcopy(model.state_dict()))
    history, stale = [], 0
    lengths = data.lengths[train_idx]
    bar = progress(range(1, cfg.epochs + 1), desc=f"train {label}", unit="epoch")
    for epoch in bar:
        model.train()
        total = 0.0
        for batch in bucket_batches(lengths, cfg.batch_size, max_pairs=_cap(model), rng=rng):
            x, lens, y = _batches_to_tensors(data, train_idx, batch, device)
            optimiser.zero_grad()
            with _autocast(device):
                logits, _ = model(x, lens)
            loss = loss_fn(logits.float(), y)
            scaler.scale(loss).backward()
            scaler.unscale_(optimiser)  # clip the true gradients (a no-op without scaling)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)  # every step
            scaler.step(optimiser)
            scaler.update()
            total += loss.item() * len(batch)
        val_loss, val_acc = _eval_loss(model, loss_fn, data, val_idx, cfg.batch_size)
        scheduler.step(val_loss)
        history.append({"run": label, "epoch": epoch, "train_loss": total / len(train_idx), "val_loss": val_loss,
                        "val_accuracy": val_acc, "lr": optimiser.param_groups[0]["lr"]})
        log.debug("%s epoch %d: train loss %.4f, validation loss %.4f, accuracy %.3f", label, epoch,
                  total / len(train_idx), val_loss, val_acc)
        if val_loss < best[0]:
            best, stale = (val_loss, epoch, copy.deepcopy(model.state_dict())), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                log.info("%s: early stop at epoch %d (best epoch %d)", label, epoch, best[1])
                break
    bar.close()
    model.load_state_dict(best[2])
    model.eval()
    return Fit(model, hp, history, best[1])


@dataclass
class TrainResult:
    model: torch.nn.Module
    hp: object
    data: TrainingData
    fold_metrics: pd.DataFrame  # predictor, fold: per fold, then mean and sd (None without CV)
    test_metrics: dict  # the final model on split == test rows, or None
    oof: pd.DataFrame  # out-of-fold predictions (predictions TSV + fold), or None
    history: pd.DataFrame
    tie_class: int
    test_baselines: dict = None  # {"majority": metrics, "length": metrics} on the split == test rows, or None


def baseline_rows(data, train_idx, test_idx, model_metrics, **extra):
    """Metric rows of the two baselines fitted on ``train_idx``, scored on ``test_idx``, and of the
    paired difference model minus length (``model_metrics`` scored on the same rows)."""
    # the whole sequence's length, not the max_len crop the model sees
    lengths = np.array([len(s) for s in data.sequences]) if data.sequences is not None else data.lengths
    try:
        fitted = fit_baselines(lengths[train_idx], data.labels[train_idx], data.classes)
    except ValueError as exc:  # a training part of one class (a given fold column): no baseline to fit
        where = f"fold {extra['fold']}" if "fold" in extra else "the test rows"
        log.warning("%s: baselines not fitted (%s); their metrics are left empty", where, exc)
        fitted = None
    rows = []
    scored = {}
    for name in ("majority", "length"):
        if fitted is None:
            scored[name] = {m: float("nan") for m in model_metrics}
        else:
            probs, pred = baseline_predictions({name: fitted[name]}, lengths[test_idx])[name]
            scored[name] = compute_metrics(data.labels[test_idx], pred, probs[:, 1])
        rows.append({"predictor": name, **extra, **scored[name]})
    rows.append({"predictor": "model_minus_length", **extra,
                 **{m: model_metrics[m] - scored["length"][m] for m in DIFFERENCE_METRICS}})
    return rows, scored


def prediction_frame(data, idx, probs, tie_class):
    pred = predicted_class(probs, tie_class)
    frame = pd.DataFrame({"id": [data.ids[i] for i in idx], "rna_type": data.rna_type,
                          "prediction": [data.classes[p] for p in pred]})
    for c, name in enumerate(data.classes):
        frame[f"probability_{name}"] = probs[:, c]
    return frame


def train(data, cfg):
    """Cross-validate (unless ``cfg.folds`` is 0 and no fold column), then train the final model."""
    pool = np.flatnonzero(~data.is_test)
    counts = np.bincount(data.labels[pool], minlength=len(data.classes))
    tie_class = int(np.argmax(counts))  # a tie goes to the class more frequent in training
    histories, rows, oof = [], [], []
    if cfg.folds or data.folds is not None:
        for run, (name, tr, te) in enumerate(outer_folds(data, cfg.folds, cfg.seed), start=1):
            tr_idx, va_idx = inner_validation(data, tr, cfg.val_fraction, cfg.seed + run)
            result = fit(data, tr_idx, va_idx, cfg, run, f"fold {name}")
            probs = predict_indices(result.model, data, te, cfg.batch_size)
            pred = predicted_class(probs, tie_class)
            metrics = compute_metrics(data.labels[te], pred, probs[:, 1])
            rows.append({"predictor": "model", "fold": name, **metrics, "n_train": len(tr_idx),
                         "n_validation": len(va_idx), "n_test": len(te), "best_epoch": result.best_epoch})
            rows += baseline_rows(data, tr, te, metrics, fold=name, n_train=len(tr), n_test=len(te))[0]
            log.info("fold %s: accuracy %.3f, macro F1 %.3f, MCC %.3f (best epoch %d)", name,
                     metrics["accuracy"], metrics["macro_f1"], metrics["mcc"], result.best_epoch)
            frame = prediction_frame(data, te, probs, tie_class)
            frame["fold"] = name
            oof.append(frame)
            histories.extend(result.history)
    tr_idx, va_idx = inner_validation(data, pool, cfg.val_fraction, cfg.seed)
    final = fit(data, tr_idx, va_idx, cfg, 0, "final")
    histories.extend(final.history)
    test_metrics = None
    test_idx = np.flatnonzero(data.is_test)
    if len(test_idx):
        probs = predict_indices(final.model, data, test_idx, cfg.batch_size)
        test_metrics = compute_metrics(data.labels[test_idx], predicted_class(probs, tie_class), probs[:, 1])
        log.info("final model on the %d test rows: accuracy %.3f, macro F1 %.3f", len(test_idx),
                 test_metrics["accuracy"], test_metrics["macro_f1"])
        test_baselines = baseline_rows(data, pool, test_idx, test_metrics)[1]
    else:
        test_baselines = None
    fold_metrics = summarise_folds(rows) if rows else None
    if oof:
        oof = pd.concat(oof, ignore_index=True)
        order = {rid: i for i, rid in enumerate(data.ids)}
        oof = oof.sort_values("id", key=lambda s: s.map(order)).reset_index(drop=True)
    else:
        oof = None
    return TrainResult(final.model.cpu(), final.hp, data, fold_metrics, test_metrics, oof, pd.DataFrame(histories), tie_class,
                       test_baselines)


REPORT_FILES = ("cv_metrics.tsv", "cv_predictions.tsv", "learning_curves.png", "confusion_matrix.png")


def default_report_dir(output):
    """``model.pt`` -> ``model.report``."""
    stem = str(output)[:-3] if str(output).endswith(".pt") else str(output)
    return stem + ".report"


def _check_outputs(output, report_dir, force):
    import os

    from ..fileio import declare_outputs

    paths = [output] + [os.path.join(report_dir, f) for f in REPORT_FILES]
    if not force:
        existing = [p for p in paths if os.path.exists(p)]
        if existing:
            raise RnalocError(f"{existing[0]}: already exists (use --force to overwrite)")
    # writable, names within NAME_MAX, none the same file as an input: before the work; in a tool run
    # the checkpoint and the report are committed together at the end
    declare_outputs(files=[("--output", output)] + [("--report-dir", p) for p in paths[1:]],
                    folders=[("--report-dir", report_dir)])


def plot_learning_curves(history, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (run, h) in enumerate(history.groupby("run", sort=False)):
        colour = f"C{i % 10}"
        ax_loss.plot(h["epoch"], h["train_loss"], color=colour, label=f"{run} train")
        ax_loss.plot(h["epoch"], h["val_loss"], color=colour, linestyle="--", label=f"{run} validation")
        ax_acc.plot(h["epoch"], h["val_accuracy"], color=colour, label=run)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss (solid: train, dashed: validation)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Validation accuracy")
    ax_acc.legend(fontsize="small")
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def plot_confusion(matrix, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix.to_numpy(), cmap="Blues")
    ax.set_xticks(range(len(matrix.columns)), matrix.columns)
    ax.set_yticks(range(len(matrix.index)), matrix.index)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    peak = matrix.to_numpy().max()
    for (r, c), v in np.ndenumerate(matrix.to_numpy()):
        ax.text(c, r, str(v), ha="center", va="center", color="white" if v > peak / 2 else "black")
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def _signed(mean, sd):
    if mean is None:
        return "undefined"
    return f"{mean:+.3f}" + ("" if sd is None else f" ± {sd:.3f}")


def _verdict(gain):
    """In words: does the model beat length? (mean gain in MCC and AUROC against their fold sd)"""
    ahead = [gain[m][0] is not None and gain[m][0] > (gain[m][1] or 0) for m in ("mcc", "auroc")]
    behind = [gain[m][0] is not None and gain[m][0] < -(gain[m][1] or 0) for m in ("mcc", "auroc")]
    if all(ahead):
        return "beats"
    if any(behind):
        return "does worse than"
    return "does not clearly beat"


def training_domain(data):
    """The applicability domain of the training (non-test) rows, grouped by cluster when known."""
    from ..domain import CALIBRATION_FOLDS, fit_domain

    keep = ~data.is_test
    seqs = [s for s, k in zip(data.sequences, keep) if k]
    if len(seqs) < 2 * CALIBRATION_FOLDS:
        log.warning("no applicability domain recorded: %d training sequences (at least %d needed); "
                    "predict will say in_domain 'unknown'", len(seqs), 2 * CALIBRATION_FOLDS)
        return None
    groups = data.groups[keep] if data.groups is not None else None
    return fit_domain(seqs, groups)


def train_to_files(dataset_path, embedding_paths, output, cfg, *, report_dir=None, force=False):
    """``rnaloc train``: train, then write the checkpoint and the report folder (all atomically)."""
    import os

    from ..fileio import make_output_dir
    from ..formats import write_table
    from .checkpoint import save_checkpoint
    from .metrics import confusion, format_metrics

    report_dir = report_dir or default_report_dir(output)
    _check_outputs(output, report_dir, force)
    # an unknown architecture or a bad --hparams value fails now, not after the data are loaded
    reserved = sorted(set(cfg.hparams) & {"dim", "n_classes"})
    if reserved:
        raise RnalocError(f"--hparams cannot set {', '.join(reserved)}: the embeddings give dim and the rna_type "
                          "gives n_classes")
    probe, _ = build_model(cfg.arch, **{"dim": 4, "n_classes": 2, **cfg.hparams})
    data = load_training_data(dataset_path, embedding_paths, folds=cfg.folds, max_len=cfg.max_len)
    check_attention_length(probe, data, cfg.arch)
    if data.cropped:
        log.warning("%d sequences longer than --max-len %d were cropped to their first %d positions",
                    data.cropped, cfg.max_len, cfg.max_len)
    n_test = int(data.is_test.sum())
    log.info("training %s on %d %s sequences (%s)%s; embeddings %s (dim %d)", cfg.arch, len(data.ids) - n_test,
             data.rna_type, ", ".join(f"{c}: {n}" for c, n in zip(data.classes, np.bincount(data.labels[~data.is_test], minlength=2))),
             f", {n_test} test rows held out" if n_test else "", data.encoder.get("encoder"), data.dim)
    result = train(data, cfg)
    make_output_dir(report_dir)
    tool = "train"
    table = result.fold_metrics
    if result.test_metrics is not None:
        scored = {"model": result.test_metrics, **result.test_baselines}
        test_rows = [{"predictor": name, "fold": "final-model-on-test-split", **values, "n_test": n_test}
                     for name, values in scored.items()]
        test_rows.append({"predictor": "model_minus_length", "fold": "final-model-on-test-split", "n_test": n_test,
                          **{m: scored["model"][m] - scored["length"][m] for m in DIFFERENCE_METRICS}})
        test_row = pd.DataFrame(test_rows)
        table = test_row if table is None else pd.concat([table, test_row], ignore_index=True)
    if table is not None:
        write_table(format_metrics(table), os.path.join(report_dir, "cv_metrics.tsv"), tool)
    if result.oof is not None:
        write_table(result.oof.round(6), os.path.join(report_dir, "cv_predictions.tsv"), tool)
        order = {rid: i for i, rid in enumerate(data.ids)}
        idx = [order[r] for r in result.oof["id"]]
        y_pred = [data.classes.index(p) for p in result.oof["prediction"]]
        plot_confusion(confusion(data.labels[idx], y_pred, data.classes), os.path.join(report_dir, "confusion_matrix.png"),
                       f"{data.rna_type}: out-of-fold predictions")
    plot_learning_curves(result.history, os.path.join(report_dir, "learning_curves.png"))
    summary, baselines = {}, {}
    if result.fold_metrics is not None:
        from .metrics import METRICS

        folds = result.fold_metrics.set_index(["predictor", "fold"])

        def number(value):  # AUROC of a fold whose held-out part has one class is undefined (NA)
            return None if pd.isna(value) else float(value)

        def mean_sd(predictor, metrics):
            return {m: [number(folds.loc[(predictor, "mean"), m]), number(folds.loc[(predictor, "sd"), m])]
                    for m in metrics}

        summary = {f"cv_{m}": value for m, value in mean_sd("model", METRICS).items()}
        baselines = {p: mean_sd(p, METRICS) for p in ("majority", "length")}
        baselines["model_minus_length"] = gain = mean_sd("model_minus_length", DIFFERENCE_METRICS)
        log.info("%s: the model %s the length-only baseline on the same folds (model minus length, mean ± sd over "
                 "folds): accuracy %s, MCC %s, AUROC %s", data.rna_type, _verdict(gain),
                 *(_signed(*gain[m]) for m in DIFFERENCE_METRICS))
    counts = np.bincount(data.labels[~data.is_test], minlength=len(data.classes))
    extra = {
        "class_counts": [int(c) for c in counts],
        "tie_class": data.classes[result.tie_class],
        "max_length": cfg.max_len,
        "training": {**{k: v for k, v in cfg.__dict__.items()}, "cv": summary, "cv_baselines": baselines,
                     "n_sequences": int(len(data.ids) - n_test)},
    }
    domain = training_domain(data)
    if domain is not None:
        extra["domain"] = domain
    save_checkpoint(output, result.model, result.hp, arch=cfg.arch, classes=data.classes, rna_type=data.rna_type,
                    encoder=data.encoder, extra=extra)
    log.info("wrote %s and the report in %s", output, report_dir)
    return result
