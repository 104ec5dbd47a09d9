"""RNA-FM weights in the Hugging Face format of MultiMolecule (``multimolecule/rnafm``).

The download is a folder with ``config.json`` and ``model.safetensors`` (and
tokenizer files). It holds the same network as the official
``RNA-FM_pretrained.pth``, under other parameter names and with another
vocabulary: 28 tokens in the order of :data:`HF_VOCAB` (``<pad>`` first,
then ``<cls>``, ``<eos>``, ...; the original has ``<cls>`` first, then
``<pad>``, and 25 tokens). Position embeddings are indexed alike in both: the
first token (BOS) uses row 2 (the original counts from its padding index 1;
MultiMolecule counts from its padding index 0 and adds one, "an upstream
off-by-one position shift ... required for checkpoint compatibility"), so
their rows are copied as they are.

:func:`read_hf_checkpoint` reads ``config.json`` as JSON and the tensors with
the ``safetensors`` package (no pickle at all), checks that the config is
RNA-FM (:func:`check_config`), renames the parameters to the package's
(``fm``) names and reorders the token rows (word embeddings, LM-head bias) from
the MultiMolecule vocabulary to the package's alphabet. The result is a
checkpoint dict in the official format (``args`` + ``model``), which
:func:`rnaloc_tools.encoders.rnafm.build_model` turns into the package's model,
so both formats run through the same code.
"""

import argparse
import json
import os
import re
import stat

from ..errors import RnalocError

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.txt"
HF_REPO = "multimolecule/rnafm"
HF_WHERE = (f"download the {HF_REPO} folder from Hugging Face (https://huggingface.co/{HF_REPO}: "
            f"{CONFIG_FILE} and {SAFETENSORS_FILE}) and pass the folder with --weights")
#: MultiMolecule's RNA vocabulary (``RnaTokenizer``, the ``standard`` alphabet), in its token order.
HF_VOCAB = ("<pad>", "<cls>", "<eos>", "<unk>", "<mask>", "<null>",
            "A", "C", "G", "U", "N", "R", "Y", "S", "W", "K", "M", "B", "D", "H", "V", "I", "X", "|", ".", "*", "-", "?")
#: The published RNA-FM: what a config must say (a test model may be smaller: see :func:`check_config`).
PUBLISHED_SIZE = {"num_hidden_layers": 12, "hidden_size": 640, "num_attention_heads": 20, "intermediate_size": 5120}
#: A config key that marks a small random model written for tests and benchmarks (never a published one).
TEST_MODEL_KEY = "rnaloc_test_model"
_SIZE_WORDS = {"num_hidden_layers": "layers", "hidden_size": "-d", "num_attention_heads": "heads",
               "intermediate_size": "FFN"}


def _describe(cfg):
    return (f"{cfg.get('num_hidden_layers')} layers, {cfg.get('hidden_size')}-d, "
            f"{cfg.get('num_attention_heads')} heads, FFN {cfg.get('intermediate_size')}")


def _is_regular(path):
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def looks_like_safetensors(path):
    """True for a ``.safetensors`` name or a file starting as one (8-byte header size, then a JSON object)."""
    if str(path).endswith(".safetensors"):
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") < 100_000_000


def hf_files(path):
    """(model.safetensors, config.json) of a folder, or of a safetensors file with config.json beside it."""
    if os.path.isdir(path):
        weights = os.path.join(path, SAFETENSORS_FILE)
        config = os.path.join(path, CONFIG_FILE)
        if not os.path.exists(weights) and not os.path.exists(config):
            raise RnalocError(
                f"{path}: a folder without {SAFETENSORS_FILE} and {CONFIG_FILE}: neither a {HF_REPO} download "
                "nor the RNA-FM_pretrained.pth file"
            )
        if not os.path.exists(weights):
            shards = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
            hint = f" (found {', '.join(shards[:3])}: sharded weights are not RNA-FM's layout)" if shards else ""
            raise RnalocError(f"{path}: no {SAFETENSORS_FILE} in the folder{hint}; {HF_WHERE}")
    else:
        weights = path
        config = os.path.join(os.path.dirname(os.path.abspath(path)), CONFIG_FILE)
    if not os.path.exists(config):
        raise RnalocError(
            f"{weights}: no {CONFIG_FILE} beside it: the safetensors file alone does not say which model it is; "
            f"put the {CONFIG_FILE} of the same {HF_REPO} download beside it (or pass the folder)"
        )
    for file, what in ((weights, "weights file"), (config, "config")):
        if not _is_regular(file):
            raise RnalocError(f"{file}: the RNA-FM {what} is not a regular file")
        if not os.access(file, os.R_OK):
            raise RnalocError(f"{file}: cannot read the RNA-FM {what} (permission denied)")
    return weights, config


def read_config(config):
    try:
        with open(config, encoding="utf-8") as fh:
            cfg = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RnalocError(f"{config}: not a model config (not JSON: {' '.join(str(exc).split())})") from None
    if not isinstance(cfg, dict):
        raise RnalocError(f"{config}: not a model config (a JSON {type(cfg).__name__}, expected an object)")
    return cfg


def read_vocab(folder, size):
    """The vocabulary of the download: its ``vocab.txt`` when there is one, else :data:`HF_VOCAB`."""
    path = os.path.join(folder, VOCAB_FILE)
    if not os.path.exists(path):
        return list(HF_VOCAB)
    try:
        with open(path, encoding="utf-8") as fh:
            vocab = [line.rstrip("\r\n") for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise RnalocError(f"{path}: cannot read the vocabulary ({exc})") from None
    if len(vocab) != size:
        raise RnalocError(f"{path}: {len(vocab)} tokens, but config.json says vocab_size {size}")
    return vocab


def check_config(cfg, config):
    """Refuse, in one line, a config that is not RNA-FM (another model, the codon model, another size)."""
    kind = cfg.get("model_type")
    if kind == "rnafm" and (cfg.get("codon") or "mrna" in str(cfg.get("_name_or_path", "")).lower()):
        raise RnalocError(
            f"{config}: this is mRNA-FM (multimolecule/mrnafm: the codon model on 3-mer tokens, "
            f"{_describe(cfg)}), not RNA-FM; use {HF_REPO}"
        )
    if kind != "rnafm":
        raise RnalocError(f"{config}: not RNA-FM (model_type {kind!r}, expected 'rnafm'); {HF_WHERE}")
    # what makes the network RNA-FM's (absent keys: MultiMolecule's RnaFmConfig defaults, which are RNA-FM's)
    want = {"hidden_act": "gelu", "position_embedding_type": "absolute", "embed_norm": True}
    for key, value in want.items():
        have = cfg.get(key, value)
        if have != value:
            raise RnalocError(f"{config}: not RNA-FM's configuration ({key} is {have!r}, RNA-FM has {value!r})")
    eps = cfg.get("layer_norm_eps", 1e-5)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < 1e-2:
        raise RnalocError(f"{config}: layer_norm_eps {eps!r} is not a small positive number")
    if not isinstance(cfg.get("vocab_size"), int) or isinstance(cfg.get("vocab_size"), bool):
        raise RnalocError(f"{config}: no vocab_size (an integer) in the config")
    sizes = {k: cfg.get(k) for k in PUBLISHED_SIZE}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes.values()):
        raise RnalocError(f"{config}: not RNA-FM's configuration (sizes {sizes})")
    if sizes["hidden_size"] % sizes["num_attention_heads"]:
        raise RnalocError(f"{config}: hidden_size {sizes['hidden_size']} is not a multiple of "
                          f"{sizes['num_attention_heads']} heads")
    positions = cfg.get("max_position_embeddings")
    if sizes != PUBLISHED_SIZE and cfg.get(TEST_MODEL_KEY) is not True:
        raise RnalocError(
            f"{config}: a model of another size ({_describe(cfg)}), not the published RNA-FM "
            f"(12 layers, 640-d, 20 heads, FFN 5120)"
        )
    if not isinstance(positions, int) or positions < 4 or (cfg.get(TEST_MODEL_KEY) is not True and positions != 1026):
        raise RnalocError(f"{config}: max_position_embeddings {positions!r}, RNA-FM has 1026")
    return sizes


#: MultiMolecule parameter name -> the package's (``fm.BioBertModel``) name; ``{i}`` is a layer index.
_RENAMES = (
    (r"embeddings\.word_embeddings\.weight", "embed_tokens.weight"),
    (r"embeddings\.position_embeddings\.weight", "embed_positions.weight"),
    (r"embeddings\.layer_norm\.(weight|bias)", r"emb_layer_norm_before.\1"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.query\.(weight|bias)", r"layers.\1.self_attn.q_proj.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.key\.(weight|bias)", r"layers.\1.self_attn.k_proj.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.value\.(weight|bias)", r"layers.\1.self_attn.v_proj.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"layers.\1.self_attn.out_proj.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.layer_norm\.(weight|bias)", r"layers.\1.self_attn_layer_norm.\2"),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"layers.\1.fc1.\2"),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"layers.\1.fc2.\2"),
    (r"encoder\.layer\.(\d+)\.layer_norm\.(weight|bias)", r"layers.\1.final_layer_norm.\2"),
    (r"encoder\.layer_norm\.(weight|bias)", r"emb_layer_norm_after.\1"),
    (r"lm_head\.transform\.dense\.(weight|bias)", r"lm_head.dense.\1"),
    (r"lm_head\.transform\.layer_norm\.(weight|bias)", r"lm_head.layer_norm.\1"),
    (r"lm_head\.bias", "lm_head.bias"),
)
#: Heads of the download that the encoder does not use (the LM decoder is tied to the word embeddings).
_IGNORED = re.compile(r"(pooler|ss_head|contact_head|lm_head\.decoder)\.")
#: Package parameters a download may lack (RnaFmModel has no LM head): the package's default init.
OPTIONAL = ("lm_head.dense.weight", "lm_head.dense.bias", "lm_head.layer_norm.weight", "lm_head.layer_norm.bias",
            "lm_head.weight")


def rename(key):
    """The package's name of one MultiMolecule parameter, or None for one the encoder does not use."""
    for prefix in ("model.", "rnafm."):  # RnaFmForPreTraining and friends keep the backbone under "model."
        if key.startswith(prefix) and key[len(prefix):].startswith(("embeddings.", "encoder.")):
            key = key[len(prefix):]
            break
    if _IGNORED.match(key):
        return None
    for pattern, target in _RENAMES:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, target, key)
    return ""  # not an RNA-FM parameter


def reorder_rows(weight, vocab, alphabet):
    """Rows of a (vocab, ...) tensor in the package alphabet's order (rows without a token: zeros)."""
    import torch

    index = {tok: i for i, tok in enumerate(vocab)}
    out = weight.new_zeros((len(alphabet.all_toks),) + tuple(weight.shape[1:]))
    for i, tok in enumerate(alphabet.all_toks):
        src = index.get("<null>" if tok.startswith("<null") else tok)
        if src is not None:
            out[i] = weight[src]
    return out.contiguous() if isinstance(out, torch.Tensor) else out


def position_rows(weight):
    """Position-embedding rows: the same index in both formats (see the module's docstring)."""
    return weight


def read_hf_checkpoint(path):
    """A checkpoint dict in the official format (``args``, ``model``) from a MultiMolecule download.

    Returns (data, weights file, config file, layer-norm epsilon).
    """
    import fm
    from safetensors import SafetensorError, safe_open

    weights, config = hf_files(path)
    cfg = read_config(config)
    sizes = check_config(cfg, config)
    vocab = read_vocab(os.path.dirname(os.path.abspath(config)), cfg["vocab_size"])
    if len(vocab) != cfg["vocab_size"]:
        raise RnalocError(f"{config}: vocab_size {cfg['vocab_size']}, but RNA-FM's vocabulary (MultiMolecule's "
                          f"RnaTokenizer) has {len(vocab)} tokens and there is no vocab.txt beside it")
    alphabet = fm.Alphabet.from_architecture("roberta_large", "rna")
    needed = {"A", "C", "G", "U", "N", "R", "Y", "K", "M", "S", "W", "B", "D", "H", "V"}
    missing = sorted(needed - set(vocab))
    if missing:
        raise RnalocError(f"{config}: not RNA-FM's vocabulary (no token for {''.join(missing)})")
    for key, token, default in (("pad_token_id", "<pad>", 0), ("bos_token_id", "<cls>", 1), ("eos_token_id", "<eos>", 2)):
        index = cfg.get(key, default)
        if not isinstance(index, int) or not 0 <= index < len(vocab) or vocab[index] != token:
            raise RnalocError(f"{config}: {key} {index!r} is not {token} in the vocabulary")
    state = {}
    try:
        with safe_open(weights, framework="pt") as fh:
            for key in fh.keys():
                name = rename(key)
                if name is None:
                    continue
                if name == "":
                    raise RnalocError(f"{weights}: not RNA-FM weights (unexpected parameter {key!r})")
                state[name] = fh.get_tensor(key)
    except (SafetensorError, OSError, ValueError) as exc:
        raise RnalocError(
            f"{weights}: truncated, corrupted or not a safetensors file ({' '.join(str(exc).split())[:160]})"
        ) from None
    if "embed_tokens.weight" not in state:
        raise RnalocError(f"{weights}: not RNA-FM weights (no embeddings.word_embeddings.weight)")
    for key in ("embed_tokens.weight", "lm_head.bias"):
        if key in state:
            if state[key].shape[0] != len(vocab):
                raise RnalocError(f"{weights}: {key} has {state[key].shape[0]} rows, the vocabulary {len(vocab)}")
            state[key] = reorder_rows(state[key], vocab, alphabet)
    if "embed_positions.weight" in state:
        state["embed_positions.weight"] = position_rows(state["embed_positions.weight"])
    state["lm_head.weight"] = state["embed_tokens.weight"]  # tied, as in both formats
    if "lm_head.bias" not in state:  # RnaFmModel has no LM head (unused here; the module has no init of its own)
        state["lm_head.bias"] = state["embed_tokens.weight"].new_zeros(len(alphabet.all_toks))
    args = argparse.Namespace(
        arch="roberta_large",
        encoder_layers=sizes["num_hidden_layers"],
        encoder_embed_dim=sizes["hidden_size"],
        encoder_ffn_embed_dim=sizes["intermediate_size"],
        encoder_attention_heads=sizes["num_attention_heads"],
        max_positions=int(cfg["max_position_embeddings"]) - 2,
        token_dropout=bool(cfg.get("token_dropout", False)),
    )
    data = {"args": args, "model": {f"encoder.encoder.{k}": v for k, v in state.items()}}
    return data, weights, config, float(cfg.get("layer_norm_eps", 1e-5))


def set_layer_norm_eps(model, eps):
    """Use the download's layer-norm epsilon in every layer norm of the package's model (its default is 1e-5)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.eps = eps


def write_random_hf_checkpoint(folder, *, layers=2, hidden=32, heads=4, ffn=64, seed=0, test_model=True):
    """A seeded random ``RnaFmModel`` saved with ``save_pretrained`` (needs ``multimolecule``); returns the folder.

    Tests and benchmarks only; ``test_model`` marks a size other than the published one as allowed.
    """
    import torch
    from multimolecule import RnaFmConfig, RnaFmModel

    extra = {TEST_MODEL_KEY: True} if test_model else {}
    config = RnaFmConfig(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                         intermediate_size=ffn, **extra)
    torch.manual_seed(seed)
    model = RnaFmModel(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # larger than the default init (std 0.02), so that layers change the output visibly
        for name, param in model.named_parameters():
            if "layer_norm" in name:
                param.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(torch.randn(param.shape, generator=gen) / max(1, param.shape[-1]) ** 0.5)
    model.save_pretrained(folder)
    return folder
