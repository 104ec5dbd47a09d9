"""RNA-FM: the frozen RNA foundation model as a per-nucleotide encoder (640-d).

The model and its alphabet come from the installed ``rna-fm`` package (``fm``);
the weights come only from a local file (``--weights`` or
``RNALOC_RNAFM_WEIGHTS``), never from the network.

Loading. The official ``RNA-FM_pretrained.pth`` is a ``torch.save`` dict whose
``args`` is a pickled :class:`argparse.Namespace` (fairseq ``roberta_large``
hyperparameters) and whose ``model`` is the state dict (``encoder.encoder.*``
names). It is read with ``torch.load(weights_only=True)`` allowing exactly
``argparse.Namespace`` and nothing else, memory-mapped where the file is in the
zip format (other top-level entries, e.g. optimizer state, are never read into
memory), and turned into a model by the package's own
``fm.pretrained.load_model_and_alphabet_core``. Anything else (a missing,
truncated or corrupted file, a state dict of another model, a text file, a zip
that is not a checkpoint) is one clear error. The model is built on the
``meta`` device and takes the checkpoint's tensors as its parameters
(:func:`build_model`), so the weights are in memory once (~400 MB for RNA-FM),
not twice.

Alphabet. RNA-FM has tokens for A, C, G, U and for every IUPAC ambiguity code
(R Y K M S W B D H V N) plus ``-``; it has no ``T`` (inputs are normalised
T -> U before they get here). Every letter of :data:`rnaloc_tools.seqs.ALPHABET`
therefore maps to its own token; a letter without a token is an error, never
``<unk>``.

Inference. ``eval()`` and :func:`torch.inference_mode`; sequences are tokenised
as the package's batch converter does (BOS ``<cls>`` + tokens + ``<eos>``,
padded with ``<pad>``); the transformer runs through :func:`_forward`, which
uses the package's modules and weights but computes self-attention with
:func:`torch.nn.functional.scaled_dot_product_attention` and a key-padding
mask, so a sequence's embedding does not depend on the rest of its batch; q, k
and v come from one GEMM (the three weights stacked per batch, the same result
as three) and the GELU runs in place. The result is the final layer's
representation (after ``emb_layer_norm_after``, the package's
``representations[num_layers]``), BOS/EOS stripped, float32. Precision
``auto`` is fp16 (autocast) on CUDA; on CPU it is bf16 (autocast) where the
CPU computes bf16 natively (AVX512-BF16 or AMX, :func:`cpu_native_bf16`) and
fp32 elsewhere, where bf16 is emulated and about six times slower. The token budget of a
batch defaults to :data:`DEFAULT_TOKS_PER_BATCH` of the device.

Batch shapes. A batch's token width is padded up to a multiple of
:data:`WIDTH_STEP` (at most ``max_len + 2``; :meth:`RnaFmEncoder.batch_width`),
so the model only ever sees a few distinct widths (16 for the official
weights). On CPU, torch's memory grows with every new width it runs (buffers
of a new size each time that the allocator keeps; in bf16 (autocast / oneDNN)
much more): a random 2-layer model fed 600 batches of random widths grew from
527 to 821 MB in bf16 (357 to 380 MB in fp32), and stayed at 359 MB (333 MB)
with widths in steps of 64. The extra positions are padding, hidden by the
attention mask like any other.
"""

import argparse
import contextlib
import logging
import math
import os
import pickle
import re
import stat
import zipfile

import numpy as np

from ..devices import resolve_device
from ..errors import RnalocError
from ..fileio import file_sha256
from ..seqs import ALPHABET
from . import Encoder

log = logging.getLogger("rnaloc")

#: The longest sequence RNA-FM takes in one piece (1024 positions minus BOS/EOS).
MAX_LEN = 1022
WEIGHTS_FILE = "RNA-FM_pretrained.pth"
WHERE_TO_GET = (
    f"the official {WEIGHTS_FILE} is published by ml4bio/RNA-FM "
    "(https://github.com/ml4bio/RNA-FM, README 'Download pre-trained models': "
    "https://drive.google.com/drive/folders/1VGye74GnNXbUMKx6QYYectZrY7G2pQ_J ; "
    "also https://proj.cse.cuhk.edu.hk/rnafm/api/download?filename=RNA-FM_pretrained.pth); "
    "download it once and pass --weights FILE or set RNALOC_RNAFM_WEIGHTS"
)
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: Default token budget of one batch, by device. On CPU the speed is the same
#: from 2048 to 16384 tokens (the GEMMs are large enough either way; CPU time
#: within 2% on a 30-sequence sample), but activations grow with the budget
#: (the FFN alone holds tokens x 5120 floats): peak RSS of a full-size run was
#: 0.93 / 1.10 / 1.41 / 1.68 GB at 2048 / 4096 / 8192 / 16384. On CUDA big
#: batches keep the GPU busy.
DEFAULT_TOKS_PER_BATCH = {"cpu": 4096, "cuda": 16384}
#: Batch token widths are rounded up to a multiple of this (see the module doc, "Batch shapes").
WIDTH_STEP = 64


def _short(exc, limit=160):
    """An exception message on one line, shortened, for a one-line error."""
    text = " ".join(str(exc).split())
    if len(text) < 12:  # e.g. KeyError(101) from unpickling a text file
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


WEIGHTS_FORMATS = ("rna-fm-pth", "multimolecule-safetensors")


def _check_path(weights):
    """(format, path): the official .pth file, or a multimolecule/rnafm folder or model.safetensors."""
    from .rnafm_hf import HF_WHERE, looks_like_safetensors

    if weights is None or str(weights).strip() == "":
        raise RnalocError(f"RNA-FM weights not given: {WHERE_TO_GET}; or {HF_WHERE}")
    path = os.fspath(weights)
    if not os.path.exists(path):
        raise RnalocError(f"{path}: RNA-FM weights file not found: {WHERE_TO_GET}; or {HF_WHERE}")
    if os.path.isdir(path):
        return "multimolecule-safetensors", path
    if not stat.S_ISREG(os.stat(path).st_mode):  # before any read: /dev/zero never ends, a FIFO blocks
        raise RnalocError(f"{path}: the RNA-FM weights are not a regular file (a device, FIFO or socket)")
    if looks_like_safetensors(path):
        return "multimolecule-safetensors", path
    if not os.access(path, os.R_OK):
        raise RnalocError(f"{path}: cannot read the RNA-FM weights file (permission denied)")
    return "rna-fm-pth", path


def load_weights(weights):
    """(model, alphabet, info) from either published format; info: format, file, sha256, config."""
    from .rnafm_hf import OPTIONAL, read_hf_checkpoint, set_layer_norm_eps

    kind, path = _check_path(weights)
    if kind == "rna-fm-pth":
        data, file, config, may_miss, eps = read_checkpoint(path), path, None, (), None
    else:
        data, file, config, eps = read_hf_checkpoint(path)
        may_miss = OPTIONAL
    model, alphabet = build_model(data, file, may_miss=may_miss)
    del data  # the model now holds the only reference to each weight
    if eps is not None:
        set_layer_norm_eps(model, eps)
    info = {"weights_format": kind, "weights_file": os.path.basename(file), "checkpoint_sha256": file_sha256(file)}
    if config is not None:
        info["weights_config_sha256"] = file_sha256(config)
    return model, alphabet, info


def read_checkpoint(path):
    """``torch.load`` the checkpoint safely: tensors, containers and ``argparse.Namespace`` only."""
    import torch

    mmap = zipfile.is_zipfile(path)  # the zip format can be memory-mapped
    if mmap:
        _check_zip(path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:
            raise RnalocError(
                f"{path}: not an RNA-FM checkpoint: it pickles {found.group(1)}, which a weights file must not "
                "(only argparse.Namespace is allowed; nothing that runs code is unpickled)"
            ) from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+?)\n", str(exc) + "\n")
        raise RnalocError(
            f"{path}: truncated, corrupted or not a PyTorch checkpoint "
            f"({detail.group(1).strip() if detail else _short(exc)})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise RnalocError(f"{path}: truncated, corrupted or not a PyTorch checkpoint ({_short(exc)})") from None
    if not isinstance(data, dict) or "args" not in data or "model" not in data:
        what = f"keys {sorted(map(str, data))[:6]}" if isinstance(data, dict) else f"a {type(data).__name__}"
        raise RnalocError(
            f"{path}: not an RNA-FM checkpoint (expected a dict with 'args' and 'model'; found {what})"
        )
    if not isinstance(data["args"], argparse.Namespace) or not isinstance(data["model"], dict):
        raise RnalocError(
            f"{path}: not an RNA-FM checkpoint ('args' is a {type(data['args']).__name__}, expected "
            f"argparse.Namespace; 'model' is a {type(data['model']).__name__}, expected a state dict)"
        )
    return data


def _check_zip(path):
    """Verify every member's CRC: torch does not, and a damaged tensor would load silently."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise RnalocError(f"{path}: truncated or corrupted checkpoint ({_short(exc)})") from None
    if bad is not None:
        raise RnalocError(f"{path}: corrupted checkpoint (checksum error in member {bad.split('/')[-1]!r})")


def build_model(data, path, may_miss=()):
    """The package's own model on a checkpoint dict, without a second copy of the weights; (model, alphabet).

    The package's ``load_model_and_alphabet_core`` builds a randomly initialised
    model and copies the state dict into it: two copies of the weights at once
    (~800 MB for the full-size model on top of the memory-mapped file). Here the
    same package code (``_load_model_and_alphabet_core_v1``: key renaming,
    ``<mask>`` row zeroed, hyperparameters) builds the model on the ``meta``
    device (no memory), the package's key checks are repeated, and the state
    dict's tensors become the parameters (``load_state_dict(assign=True)``):
    with a memory-mapped checkpoint the weights are the file's pages, held once.
    The result is the package's model (see the tests): tied LM-head weights
    stay tied (the package's copy order: ``lm_head.weight`` wins), parameters
    keep the model's dtype, and parameters the file lacks (the contact
    regression, absent from the official file) get the package's default
    initialisation.
    """
    import fm
    import torch

    args = data["args"]
    if getattr(args, "arch", None) != "roberta_large":
        raise RnalocError(
            f"{path}: not an RNA-FM checkpoint (architecture {getattr(args, 'arch', None)!r}, expected 'roberta_large')"
        )
    try:
        with torch.device("meta"):
            model, alphabet, state = fm.pretrained._load_model_and_alphabet_core_v1(data, theme="rna")
        expected = dict(model.state_dict(keep_vars=True))
        may_miss = {"contact_head.regression.weight", "contact_head.regression.bias", *may_miss}  # as the package
        missing = (set(expected) - set(state)) - may_miss
        unexpected = set(state) - set(expected)
        if missing or unexpected:
            raise RuntimeError(
                (f"missing key(s) {sorted(missing)[:3]}" if missing else "")
                + ("; " if missing and unexpected else "")
                + (f"unexpected key(s) {sorted(unexpected)[:3]}" if unexpected else "")
            )
        for key, value in state.items():
            want = expected[key]
            if tuple(value.shape) != tuple(want.shape):
                raise RuntimeError(f"size mismatch for {key}: {tuple(value.shape)} in the file, {tuple(want.shape)} in the model")
            if value.dtype != want.dtype:
                state[key] = value.to(want.dtype)  # the package's copy_ would convert the same way
        tied = getattr(model, "lm_head", None) is not None and model.lm_head.weight is model.embed_tokens.weight
        model.load_state_dict(state, strict=False, assign=True)
        if tied:
            model.embed_tokens.weight = model.lm_head.weight
        for name, module in model.named_modules():  # parameters the file lacks: the package's own init
            if any(t.is_meta for t in module.parameters(recurse=False)) or any(
                    t.is_meta for t in module.buffers(recurse=False)):
                module.to_empty(device="cpu", recurse=False)
                module.reset_parameters()
    except Exception as exc:  # noqa: BLE001 - missing/unexpected keys, shape mismatches, bad args
        raise RnalocError(f"{path}: not an RNA-FM checkpoint (weights do not fit the model: {_short(exc)})") from None
    return model, alphabet


def token_table(alphabet):
    """A 256-entry lookup: ASCII code -> token index, -1 for letters without a token."""
    table = np.full(256, -1, dtype=np.int64)
    for tok, idx in alphabet.tok_to_idx.items():
        if len(tok) == 1:
            table[ord(tok)] = idx
    missing = sorted(c for c in ALPHABET if table[ord(c)] < 0)
    if missing:
        raise RnalocError(f"the RNA-FM alphabet has no token for {''.join(missing)}")
    return table


def bucket_width(width, step, cap):
    """``width`` rounded up to a multiple of ``step``, but not past ``cap`` (nor below ``width``)."""
    return max(width, min(-(-width // step) * step, cap))


def tokenize(seqs, alphabet, table, width=None):
    """(B, T) int64 tokens: BOS + sequence + EOS, right-padded (to ``width`` tokens when given, else to
    the longest); as the package's batch converter."""
    import torch

    width = max(width or 0, max(len(s) for s in seqs) + int(alphabet.prepend_bos) + int(alphabet.append_eos))
    tokens = np.full((len(seqs), width), alphabet.padding_idx, dtype=np.int64)
    start = int(alphabet.prepend_bos)
    for i, s in enumerate(seqs):
        codes = table[np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8)]
        if (codes < 0).any():
            bad = "".join(sorted({c for c, k in zip(s, codes) if k < 0}))
            raise RnalocError(f"letter(s) {bad!r} have no RNA-FM token (normalise sequences first)")
        if alphabet.prepend_bos:
            tokens[i, 0] = alphabet.cls_idx
        tokens[i, start : start + len(s)] = codes
        if alphabet.append_eos:
            tokens[i, start + len(s)] = alphabet.eos_idx
    return torch.from_numpy(tokens)


def _qkv_weights(attn):
    """q, k and v projections stacked into one (3E, E) weight and (3E,) bias, for one GEMM instead of three.

    Made per batch (a ~5 MB copy per layer for RNA-FM, nothing kept), so the
    model holds its weights once; the product is the same, row for row, as the
    three separate projections (same reduction over E for every output).
    """
    import torch

    projs = (attn.q_proj, attn.k_proj, attn.v_proj)
    weight = torch.cat([p.weight for p in projs])
    if all(p.bias is None for p in projs):
        return weight, None
    bias = torch.cat([p.bias if p.bias is not None else p.weight.new_zeros(p.weight.shape[0]) for p in projs])
    return weight, bias


def _layer_forward(layer, x, keep, qkv=None):
    """One package ``TransformerLayer`` (pre-LN) with SDPA attention.

    x: (B, T, E); keep: (B, 1, 1, T) bool (True: a real token) or None (no padding);
    qkv: :func:`_qkv_weights` of the layer, made here when not given.
    """
    import torch
    import torch.nn.functional as F

    attn = layer.self_attn
    bsz, length, dim = x.shape
    heads = attn.num_heads
    h = layer.self_attn_layer_norm(x)
    weight, bias = qkv if qkv is not None else _qkv_weights(attn)
    q, k, v = F.linear(h, weight, bias).view(bsz, length, 3, heads, -1).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, D)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=attn.scaling)  # (B, H, T, D)
    x = x + attn.out_proj(o.transpose(1, 2).reshape(bsz, length, dim))
    h = layer.final_layer_norm(x)
    # fm's gelu is the exact (erf) GELU; in place, so the FFN holds one (B, T, 4E) buffer, not two
    return x + layer.fc2(torch.ops.aten.gelu_(layer.fc1(h)))


def _forward(model, tokens):
    """Final-layer representation (B, T, E) of the package's ESM-1b-style model, with SDPA attention.

    Same computation as ``model(tokens, repr_layers=[n])["representations"][n]``
    (see the tests), minus the LM head and the explicit attention matrices.
    """

    pad = tokens.eq(model.padding_idx)  # (B, T)
    x = model.embed_scale * model.embed_tokens(tokens)
    if getattr(model.args, "token_dropout", False):
        x = x * (1 - 0.15 * 0.8)  # the package's rescaling; inputs never contain <mask>
    x = x + model.embed_positions(tokens)
    if model.emb_layer_norm_before:
        x = model.emb_layer_norm_before(x)
    x = x * (~pad).unsqueeze(-1).to(x.dtype)
    # attend to real tokens only; no mask at all when nothing is padded (same result: the mask adds 0 there)
    keep = (~pad)[:, None, None, :] if pad.any() else None
    for layer in model.layers:
        x = _layer_forward(layer, x, keep)
    return model.emb_layer_norm_after(x)


#: What bf16 cost on a CPU without native bf16, measured by bench/bench_embed.py (AMD EPYC, AVX2 only,
#: 45 sequences, quiet machine): throughput vs the original RNALoc-LM method x3.93 in fp32, x0.66 in bf16.
BF16_EMULATED_COST = "about 6x slower than fp32 (bench/bench_embed.py on an AVX2-only AMD EPYC: x0.66 vs x3.93)"


def cpuinfo_bf16_flags(text):
    """The native-bf16 flags (``avx512_bf16``, ``amx_bf16``) among the ``flags`` lines of /proc/cpuinfo text."""
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return sorted(flags & {"avx512_bf16", "amx_bf16"})


def cpu_native_bf16():
    """(bool, evidence): does this CPU compute bf16 natively (AVX512-BF16 or AMX)?

    torch's own CPU capability check (``torch.cpu._is_avx512_bf16_supported``,
    ``_is_amx_tile_supported``) where this torch has it, else the ``flags`` of
    /proc/cpuinfo; without either, no.
    """
    import torch

    avx = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if avx is not None and amx is not None:
        found = [name for name, check in (("AVX512-BF16", avx), ("AMX", amx)) if check()]
        return bool(found), f"{' and '.join(found) or 'neither AVX512-BF16 nor AMX'} (torch CPU capability)"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            found = cpuinfo_bf16_flags(fh.read())
    except OSError:
        return False, "CPU features unknown (no /proc/cpuinfo)"
    return bool(found), f"{' and '.join(found) or 'neither avx512_bf16 nor amx_bf16'} (/proc/cpuinfo)"


def resolve_precision(precision, device):
    """The precision to run: ``auto`` is fp16 on CUDA, and on CPU bf16 where it is native, else fp32."""
    if precision not in (None,) + PRECISIONS:
        raise RnalocError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if precision == "fp16" and device == "cpu":
        raise RnalocError("--precision fp16 needs --device cuda; on CPU use fp32 (or bf16)")
    if device == "cpu" and precision in (None, "auto", "bf16"):
        native, evidence = cpu_native_bf16()
        if precision == "bf16" and not native:
            log.warning("--precision bf16 on a CPU without native bf16 (%s): it is emulated, %s; "
                        "--precision fp32 (or auto) is faster here", evidence, BF16_EMULATED_COST)
        if precision in (None, "auto"):
            precision = "bf16" if native else "fp32"
            log.debug("--precision auto: %s on this CPU (native bf16: %s)", precision, evidence)
    elif precision in (None, "auto"):
        precision = "fp16" if device == "cuda" else "fp32"
    return precision


class RnaFmEncoder(Encoder):
    """RNA-FM (12 layers, 640-d in the official weights): sequence -> (L, dim) float32."""

    name = "rna-fm"
    max_len = MAX_LEN
    extra_tokens = 2  # BOS and EOS

    def __init__(self, weights, device="auto", precision="auto", threads=None):
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.default_toks_per_batch = DEFAULT_TOKS_PER_BATCH[self.device]
        model, alphabet, self.weights_info = load_weights(weights)
        self.path = os.fspath(weights)
        self.sha256 = self.weights_info["checkpoint_sha256"]
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.alphabet = alphabet
        self.table = token_table(alphabet)
        self.dim = int(model.args.embed_dim)
        self.layers = int(model.args.layers)
        self.max_len = min(MAX_LEN, int(model.args.max_positions) - 2)
        log.debug(
            "RNA-FM %s: %d layers, %d-d, %s on %s", self.path, self.layers, self.dim, self.precision, self.device
        )

    def meta(self):
        meta = super().meta()
        meta.update(
            checkpoint_sha256=self.sha256,
            layers=self.layers,
            attention_heads=int(self.model.args.attention_heads),
            ffn_embed_dim=int(self.model.args.ffn_embed_dim),
            representation=f"layer {self.layers} (final, layer-normed), BOS/EOS stripped",
            precision=self.precision,
            **{k: v for k, v in self.weights_info.items() if k != "checkpoint_sha256"},
        )
        return meta

    def _autocast(self):
        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.autocast(device_type=self.device, dtype=dtype)

    def batch_width(self, width):
        """``width`` tokens rounded up to a multiple of :data:`WIDTH_STEP`, at most ``max_len`` + BOS/EOS."""
        return bucket_width(width, WIDTH_STEP, self.max_len + self.extra_tokens)

    def tokens(self, seqs, width=None):
        """The batch's tokens (padded to ``width`` when given; :meth:`embed` gives :meth:`batch_width`)."""
        return tokenize(seqs, self.alphabet, self.table, width=width)

    def embed(self, seqs):
        import torch

        too_long = [len(s) for s in seqs if len(s) > self.max_len]
        if too_long:
            raise RnalocError(f"internal error: a {max(too_long)}-nt piece exceeds RNA-FM's {self.max_len} nt")
        tokens = self.tokens(seqs, self.batch_width(max(map(len, seqs)) + self.extra_tokens)).to(self.device)
        with torch.inference_mode(), self._autocast():
            rep = _forward(self.model, tokens)  # (B, T, E)
        rep = rep.float().cpu().numpy()
        start = int(self.alphabet.prepend_bos)
        # copies: a view would keep the whole padded (B, T, E) batch alive as long as any one row is kept
        return [rep[i, start : start + len(s)].copy() for i, s in enumerate(seqs)]


def random_checkpoint_data(*, layers=2, embed_dim=32, heads=4, ffn=64, max_positions=1024, seed=0,
                           token_dropout=False):
    """A checkpoint dict in the format of the official RNA-FM_pretrained.pth, with seeded random weights.

    ``args``: an :class:`argparse.Namespace` of fairseq ``roberta_large``
    hyperparameters (``encoder_layers``, ``encoder_embed_dim``, ...); ``model``:
    the state dict under the official ``encoder.encoder.*`` names (embedding
    layer norm before and after, LM head, contact head included).
    """
    import fm
    import torch

    if embed_dim % heads:
        raise ValueError("embed_dim must be a multiple of heads")
    args = argparse.Namespace(
        arch="roberta_large",
        encoder_layers=layers,
        encoder_embed_dim=embed_dim,
        encoder_ffn_embed_dim=ffn,
        encoder_attention_heads=heads,
        max_positions=max_positions,
        token_dropout=token_dropout,
        dropout=0.1,
        attention_dropout=0.1,
        activation_dropout=0.0,
        activation_fn="gelu",
        task="masked_lm",
        criterion="masked_lm",
        seed=seed,
    )
    alphabet = fm.Alphabet.from_architecture("roberta_large", "rna")
    model_args = argparse.Namespace(
        arch="roberta_large", layers=layers, embed_dim=embed_dim, ffn_embed_dim=ffn, attention_heads=heads,
        max_positions=max_positions, emb_layer_norm_before=True, token_dropout=token_dropout,
    )
    gen = torch.Generator().manual_seed(seed)
    model = fm.BioBertModel(model_args, alphabet)
    state = {}
    for key, value in model.state_dict().items():
        if key == "lm_head.weight":  # tied to embed_tokens, saved as its own entry
            continue
        if key.endswith("bias") or "layer_norm" in key:
            base = torch.ones_like(value) if key.endswith("weight") else torch.zeros_like(value)
            value = base + 0.1 * torch.randn(value.shape, generator=gen)
        else:
            fan_in = value.shape[-1] if value.dim() > 1 else 1
            value = torch.randn(value.shape, generator=gen) / math.sqrt(fan_in)
        state[key] = value.contiguous()
    state["embed_tokens.weight"][alphabet.padding_idx] = 0
    state["lm_head.weight"] = state["embed_tokens.weight"]
    return {"args": args, "model": {f"encoder.encoder.{k}": v for k, v in state.items()}}


def write_random_checkpoint(path, **kwargs):
    """Write :func:`random_checkpoint_data` with ``torch.save``; returns ``path``.

    Defaults are a tiny test model (2 layers, 32-d, 4 heads, FFN 64); the
    full-size one is ``layers=12, embed_dim=640, heads=20, ffn=5120``.
    """
    import torch

    from ..fileio import atomic_path

    data = random_checkpoint_data(**kwargs)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(data, fh)
    return path
