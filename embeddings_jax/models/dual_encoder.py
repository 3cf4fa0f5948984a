"""Training and evaluation of a CLIP-style dual encoder (``towers.DualEncoder``) on captioned images.

Config keys read here (see ``experiments/clip.py`` for defaults): model ``image_tower, max_len,
embed_dim, width, depth, heads``; loss ``loss_block_size`` (0: reference loss), ``shard_map``; training
``seed, batch_size, num_epochs, learning_rate, warmup_steps, weight_decay, num_devices, log_every,
checkpoint_every``; evaluation ``probe_train_subset, probe_steps``.

Evaluation, on test images and held-out caption templates:

* zero-shot accuracy: class embedding = normalized mean of a class's caption embeddings over templates
  (CLIP's prompt ensembling); an image gets the class of highest cosine similarity;
* image->text and text->image recall@k against the distinct held-out captions; captions are class-level,
  so a retrieved item is correct when it shows / describes the query's class;
* a linear probe on the frozen, normalized image embeddings.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from embeddings_jax.data.class_captions import caption_batches
from embeddings_jax.eval.linear_probe import linear_probe
from embeddings_jax.eval.retrieval import hit_rate_at_k
from embeddings_jax.models.towers import DualEncoder, build_dual_encoder
from embeddings_jax.ops import losses
from embeddings_jax.ops.similarity import l2_normalize
from embeddings_jax.train import LoopConfig, create_train_state, make_mesh, train

LOSSES = ("clip", "siglip")


def model_from_config(config, vocab_size: int, loss: str) -> DualEncoder:
    """The dual encoder of ``config``, its logit scale and bias initialised as the loss's paper does."""
    init = {"init_scale": 10.0, "init_bias": -10.0} if loss == "siglip" else {"init_scale": 1 / 0.07, "init_bias": 0.0}
    return build_dual_encoder(
        config.image_tower, vocab_size=vocab_size, max_len=config.max_len, embed_dim=config.embed_dim,
        width=config.width, depth=config.depth, heads=config.heads, **init,
    )


def make_loss_fn(model: DualEncoder, loss: str, mesh, config):
    """``loss_fn(params, batch, rng) -> (loss, {scale, bias})``; batch = uint8 images + token ids."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
    form = {"block_size": config.loss_block_size or None, "mesh": mesh if config.shard_map else None}

    def loss_fn(params, batch, rng):
        del rng
        x, y, scale, bias = model.apply({"params": params}, batch["image"].astype(jnp.float32) / 255.0, batch["tokens"])
        scale = jnp.minimum(scale, 100.0)  # CLIP clips the inverse temperature at 100
        if loss == "clip":
            value = losses.clip_loss(x, y, scale=scale, **form)
        else:
            value = losses.siglip_loss(x, y, scale=scale, bias=bias, **form)
        return value, {"scale": scale, "bias": bias}

    return loss_fn


def train_dual_encoder(model, loss, images, labels, token_table, config, workdir, mesh=None):
    """Trains with the shared loop (checkpoints, metrics, resume); returns the final parameters.

    images: uint8 [N, H, W]; labels: int [N]; token_table: int32 [templates, classes, L] captions.
    """
    workdir = pathlib.Path(workdir)
    mesh = mesh or make_mesh(config.num_devices or None)
    batch_fn, steps_per_epoch = caption_batches(images, labels, token_table, config.batch_size, config.seed)
    num_steps = config.num_epochs * steps_per_epoch
    if num_steps < 1:
        raise ValueError(f"config.num_epochs={config.num_epochs} gives no training steps")
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, min(config.warmup_steps, num_steps - 1), num_steps
    )
    tx = optax.adamw(schedule, weight_decay=config.weight_decay)
    dummy = (jnp.zeros((1, *images.shape[1:]), jnp.float32), jnp.zeros((1, token_table.shape[-1]), jnp.int32))
    state = create_train_state(lambda key: model.init(key, *dummy)["params"], tx, config.seed, mesh)
    loop = LoopConfig(
        num_steps=num_steps, log_every=config.log_every, checkpoint_every=config.checkpoint_every,
        desc=f"{loss} {workdir.name}",
    )
    state = train(state, make_loss_fn(model, loss, mesh, config), batch_fn, mesh=mesh, workdir=workdir, config=loop)
    return jax.device_get(state.params)


def embed(model: DualEncoder, params, inputs: np.ndarray, method: str, batch: int = 1000) -> np.ndarray:
    """Embeds images (uint8) with ``method="encode_image"`` or token ids with ``"encode_text"``: [N, embed_dim]."""
    fn = jax.jit(lambda x: model.apply({"params": params}, x, method=getattr(DualEncoder, method)))
    out = []
    for i in range(0, len(inputs), batch):
        x = inputs[i : i + batch]
        out.append(np.asarray(fn(x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x)))
    return np.concatenate(out)


def class_embeddings(model, params, token_table: np.ndarray) -> np.ndarray:
    """[classes, E]: normalized mean over templates of the caption embeddings (prompt ensembling)."""
    t, k, length = token_table.shape
    e = embed(model, params, token_table.reshape(t * k, length), "encode_text").reshape(t, k, -1).mean(0)
    return l2_normalize(e)


def class_recall(img: np.ndarray, img_labels: np.ndarray, txt: np.ndarray, txt_labels: np.ndarray, ks=(1, 5)):
    """Recall@k both ways: the share of queries with an item of their own class among the top k.

    img: [N, E] test images; txt: [M, E] distinct captions (each names one class).
    """
    sims = img @ txt.T

    def recall(s, q_labels, item_labels):
        ranked = np.argsort(-s, axis=1, kind="stable")[:, : max(ks)]
        by_class = {c: np.flatnonzero(item_labels == c) for c in np.unique(q_labels)}
        relevant = [by_class[c] for c in q_labels]
        return {k: hit_rate_at_k(ranked, relevant, min(k, ranked.shape[1])) for k in ks}  # k > items: all

    out = {}
    for name, (s, ql, il) in {"image_to_text": (sims, img_labels, txt_labels),
                              "text_to_image": (sims.T, txt_labels, img_labels)}.items():
        for k, v in recall(s, ql, il).items():
            out[f"{name}_recall_at_{k}"] = v
    return out


def evaluate(model, params, data: dict, tables: dict, config) -> dict[str, float]:
    """Zero-shot accuracy (held-out and training templates), recall@1/5 both ways, linear-probe accuracy.

    data: ``train_images, train_labels, test_images, test_labels``; tables: ``class_captions.token_tables``.
    """
    img_test = embed(model, params, data["test_images"], "encode_image")
    y_test = data["test_labels"]
    out = {}
    for split in ("heldout", "train"):
        cls = class_embeddings(model, params, tables[split])
        out[f"zeroshot_acc_{split}_templates"] = float(np.mean(np.argmax(img_test @ cls.T, axis=1) == y_test))
    table = tables["heldout"]  # the distinct held-out captions: [templates * classes]
    txt = embed(model, params, table.reshape(-1, table.shape[-1]), "encode_text")
    out.update(class_recall(img_test, y_test, txt, np.tile(np.arange(table.shape[1]), table.shape[0])))
    n = config.probe_train_subset or len(data["train_labels"])
    img_train = embed(model, params, data["train_images"][:n], "encode_image")
    out["linear_probe_acc"] = linear_probe(img_train, data["train_labels"][:n], img_test, y_test, config.probe_steps)
    return out


def similarity_example(model, params, images: np.ndarray, labels: np.ndarray, token_table: np.ndarray) -> dict:
    """Cosine similarity of the first image of each class against one caption of every class.

    Caption ``i`` uses template ``i mod templates``. Returns ``{"classes": [n], "images": [n, H, W],
    "sims": [n, n]}`` (rows: images, columns: captions).
    """
    classes = [c for c in range(token_table.shape[1]) if np.any(labels == c)]
    shown = images[[int(np.flatnonzero(labels == c)[0]) for c in classes]]
    img = embed(model, params, shown, "encode_image")
    txt = embed(model, params, token_table[np.arange(len(classes)) % len(token_table), classes], "encode_text")
    return {"classes": classes, "images": shown, "sims": img @ txt.T}
