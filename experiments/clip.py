"""CLIP-style dual encoder on Fashion-MNIST and MNIST with template captions; CLIP vs SigLIP loss.

Each training image is paired with a caption made from its class name and one of several training
templates ("a blurry picture of the sneaker."); other templates are held out and used only at test time.
Reported on the test set, for each dataset and loss:

* zero-shot accuracy: class embedding = normalized mean of the held-out-template caption embeddings
  (CLIP's prompt ensembling); an image is assigned the class of highest cosine similarity;
* image->text and text->image recall@1/5 between the test images and the distinct held-out captions
  (templates x classes). Captions are class-level, so a retrieved item is correct when it shows /
  describes the query's class;
* a linear probe (softmax regression) on the frozen, normalized image embeddings.

Config args (comma-separated): ``runlocal`` (seconds, CPU), ``fashion_mnist`` / ``mnist`` (one dataset
instead of both), ``clip`` / ``siglip`` (one loss instead of both), ``vit`` (ViT image tower instead of CNN).
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from embeddings_jax.data.batching import epoch_batches
from embeddings_jax.data.images import class_names, load_mnist
from embeddings_jax.eval.retrieval import hit_rate_at_k
from embeddings_jax.models.towers import PAD_ID, DualEncoder, build_dual_encoder
from embeddings_jax.ops import losses
from embeddings_jax.train import LoopConfig, create_train_state, make_mesh, train
from experiments.common import RESULTS_DIR, write_results

TRAIN_TEMPLATES = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a black and white photo of a {}.",
    "a low resolution photo of the {}.",
    "a blurry picture of the {}.",
    "a grayscale image showing a {}.",
    "this is a {}.",
)
TEST_TEMPLATES = (  # never seen in training
    "a cropped photo of the {}.",
    "a pixelated rendering of a {}.",
    "there is a {} in this tiny scan.",
    "a small dark thumbnail of one {}.",
)
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
LOSSES = ("clip", "siglip")
DATASETS = ("fashion_mnist", "mnist")


def class_phrases(dataset: str) -> tuple[str, ...]:
    """Caption phrase of each class: Fashion-MNIST names lower-cased ("t-shirt/top"), MNIST "digit seven"."""
    if dataset == "mnist":
        return tuple(f"digit {d}" for d in DIGITS)
    return tuple(n.lower() for n in class_names(dataset))


def captions(templates: Sequence[str], phrases: Sequence[str]) -> list[list[str]]:
    """``[template][class]`` caption strings."""
    return [[t.format(p) for p in phrases] for t in templates]


# ---------------------------------------------------------------------------------------------------- tokenizer


class WordPieceTokenizer:
    """Greedy longest-match-first word pieces (as BERT), vocabulary = training words + single characters.

    A word seen in training is one piece; an unseen word ("pixelated") falls back to the longest known
    prefixes and ``##``-continuations, down to characters. Id 0 is padding, id 1 unknown.
    ``dropout`` (training only, as BPE-dropout) spells a word out in characters with that probability,
    so the character pieces that unseen words fall back to are trained too.
    """

    def __init__(self, texts: Iterable[str]):
        words = sorted({w for t in texts for w in self.split(t)})
        chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789") | {c for w in words for c in w})
        pieces = ["[PAD]", "[UNK]", *words, *(c for c in chars if c not in words), *(f"##{c}" for c in chars)]
        self.vocab = {p: i for i, p in enumerate(dict.fromkeys(pieces))}
        assert self.vocab["[PAD]"] == PAD_ID

    @staticmethod
    def split(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+|[^a-z0-9\s]", text.lower())

    def tokenize(self, text: str, rng: np.random.Generator | None = None, dropout: float = 0.0) -> list[str]:
        out = []
        for word in self.split(text):
            if rng is not None and rng.random() < dropout:
                out += [word[0], *(f"##{c}" for c in word[1:])]
                continue
            start = 0
            while start < len(word):
                for end in range(len(word), start, -1):
                    piece = word[start:end] if start == 0 else f"##{word[start:end]}"
                    if piece in self.vocab:
                        break
                else:
                    piece, end = "[UNK]", start + 1
                out.append(piece)
                start = end
        return out

    def encode(self, texts: Sequence[str], max_len: int, rng=None, dropout: float = 0.0) -> np.ndarray:
        """int32 ``[N, max_len]`` ids, padded with 0. Raises ValueError when a text does not fit."""
        ids = np.zeros((len(texts), max_len), np.int32)
        for i, t in enumerate(texts):
            pieces = self.tokenize(t, rng, dropout)
            if len(pieces) > max_len:
                raise ValueError(f"caption {t!r} has {len(pieces)} word pieces; raise max_len above {max_len}")
            ids[i, : len(pieces)] = [self.vocab[p] for p in pieces]
        return ids

    def __len__(self) -> int:
        return len(self.vocab)


# ---------------------------------------------------------------------------------------------------- config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = set(filter(None, (arg or "").split(",")))
    known = {"runlocal", "vit", *LOSSES, *DATASETS}
    if args - known:
        raise ValueError(f"unknown clip config args {sorted(args - known)}; use {sorted(known)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.datasets = ",".join(d for d in DATASETS if d in args) or ",".join(DATASETS)
    c.losses = ",".join(x for x in LOSSES if x in args) or ",".join(LOSSES)
    c.image_tower = "vit" if "vit" in args else "cnn"
    c.embed_dim = 64
    c.width = 64  # text transformer (and ViT) width; the CNN's dense layer has 2 x width units
    c.depth = 2
    c.heads = 4
    c.max_len = 40
    c.piece_dropout = 0.1  # word-piece dropout on training captions
    c.piece_variants = 8  # pre-tokenized spellings of each training caption
    c.batch_size = 256
    c.num_epochs = 1
    c.learning_rate = 2e-3
    c.weight_decay = 1e-4
    c.warmup_steps = 100
    c.num_devices = 0  # 0: every local device
    c.loss_block_size = 0  # 0: reference loss; k > 0: blockwise loss with row tiles of k
    c.shard_map = True  # shard_map loss over the mesh (False: global view under jit)
    c.train_subset = 0  # 0: all 60,000 training images
    c.test_subset = 0  # 0: all 10,000 test images
    c.probe_train_subset = 20000
    c.probe_steps = 500
    c.log_every = 50
    c.checkpoint_every = 1000
    c.write_results = True  # also write experiments/results/clip.{md,json} and the similarity picture
    if "runlocal" in args:
        c.datasets = ",".join(d for d in DATASETS if d in args) or "fashion_mnist"
        c.embed_dim = 32
        c.width = 32
        c.depth = 1
        c.batch_size = 64
        c.num_epochs = 1
        c.warmup_steps = 5
        c.train_subset = 1024
        c.test_subset = 256
        c.probe_train_subset = 512
        c.probe_steps = 50
        c.log_every = 4
        c.checkpoint_every = 8
        c.write_results = False
    return c


# ---------------------------------------------------------------------------------------------------- training


def _names(csv: str, allowed: Sequence[str], what: str) -> list[str]:
    names = [x for x in csv.split(",") if x]
    bad = [x for x in names if x not in allowed]
    if bad or not names:
        raise ValueError(f"config.{what}={csv!r}: choose a comma-separated subset of {list(allowed)}")
    return names


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


def caption_batches(images, labels, token_table: np.ndarray, batch_size: int, seed: int):
    """``(batch_fn, steps_per_epoch)``: shuffled images, each captioned with a random training template.

    token_table: int32 [templates, classes, L]. The batch of step s depends only on (seed, s).
    """
    base, steps = epoch_batches({"image": images, "label": labels}, batch_size, seed)

    def batch_fn(step: int) -> dict[str, np.ndarray]:
        b = base(step)
        t = np.random.default_rng([seed, step, 1]).integers(len(token_table), size=len(b["label"]))
        return {"image": b["image"], "tokens": token_table[t, b["label"]]}

    return batch_fn, steps


def build_model(config, vocab_size: int, loss: str) -> DualEncoder:
    init = {"init_scale": 10.0, "init_bias": -10.0} if loss == "siglip" else {"init_scale": 1 / 0.07, "init_bias": 0.0}
    return build_dual_encoder(
        config.image_tower, vocab_size=vocab_size, max_len=config.max_len, embed_dim=config.embed_dim,
        width=config.width, depth=config.depth, heads=config.heads, **init,
    )


def train_dual_encoder(model, loss, images, labels, token_table, config, workdir, mesh=None):
    """Trains with the shared loop (checkpoints, metrics, resume); returns the final parameters."""
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


# ---------------------------------------------------------------------------------------------------- evaluation


def embed(model: DualEncoder, params, inputs: np.ndarray, method: str, batch: int = 1000) -> np.ndarray:
    """Embeds images (uint8) or token ids in batches: [N, embed_dim]."""
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
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def retrieval(img: np.ndarray, img_labels: np.ndarray, txt: np.ndarray, txt_labels: np.ndarray, ks=(1, 5)):
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


def linear_probe(x_train, y_train, x_test, y_test, steps: int, seed: int = 0, l2: float = 1e-4) -> float:
    """Test accuracy of softmax regression (full-batch Adam, L2) on frozen features."""
    classes = int(y_train.max()) + 1
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xtr, xte = jnp.asarray((x_train - mean) / std), jnp.asarray((x_test - mean) / std)
    params = {"w": jnp.zeros((x_train.shape[1], classes)), "b": jnp.zeros(classes)}
    tx = optax.adam(0.05)

    def loss(p):
        logits = xtr @ p["w"] + p["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(y_train)).mean() + l2 * jnp.sum(
            p["w"] ** 2
        )

    @jax.jit
    def fit(params):
        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, tx.init(params)), None, length=steps)[0][0]

    p = fit(params)
    return float(np.mean(np.asarray(jnp.argmax(xte @ p["w"] + p["b"], axis=1)) == y_test))


def evaluate(model, params, data: dict, tables: dict, config) -> dict[str, float]:
    img_test = embed(model, params, data["test_images"], "encode_image")
    y_test = data["test_labels"]
    out = {}
    for split in ("heldout", "train"):
        cls = class_embeddings(model, params, tables[split])
        out[f"zeroshot_acc_{split}_templates"] = float(np.mean(np.argmax(img_test @ cls.T, axis=1) == y_test))
    table = tables["heldout"]  # the distinct held-out captions: [templates * classes]
    txt = embed(model, params, table.reshape(-1, table.shape[-1]), "encode_text")
    out.update(retrieval(img_test, y_test, txt, np.tile(np.arange(table.shape[1]), table.shape[0])))
    n = config.probe_train_subset or len(data["train_labels"])
    img_train = embed(model, params, data["train_images"][:n], "encode_image")
    out["linear_probe_acc"] = linear_probe(img_train, data["train_labels"][:n], img_test, y_test, config.probe_steps)
    return out


# ---------------------------------------------------------------------------------------------------- run


def _load(dataset: str, config) -> dict:
    x_train, y_train = load_mnist("train", dataset)
    x_test, y_test = load_mnist("test", dataset)
    if config.train_subset:
        x_train, y_train = x_train[: config.train_subset], y_train[: config.train_subset]
    if config.test_subset:
        x_test, y_test = x_test[: config.test_subset], y_test[: config.test_subset]
    return {"train_images": x_train, "train_labels": y_train, "test_images": x_test, "test_labels": y_test}


def token_tables(dataset: str, config) -> tuple[WordPieceTokenizer, dict[str, np.ndarray]]:
    """Tokenizer fitted on the training captions, and int32 [templates, classes, L] id tables: "train" and
    "heldout" tokenized plainly, "train_dropout" = ``piece_variants`` word-piece-dropout spellings of each
    training caption stacked along the template axis (what training samples from)."""
    phrases = class_phrases(dataset)
    flat = lambda templates: [c for row in captions(templates, phrases) for c in row]
    tok = WordPieceTokenizer(flat(TRAIN_TEMPLATES))
    shape = (len(TRAIN_TEMPLATES), len(phrases), config.max_len)
    rng = np.random.default_rng([config.seed, 2])
    variants = [tok.encode(flat(TRAIN_TEMPLATES), config.max_len).reshape(shape)]
    variants += [
        tok.encode(flat(TRAIN_TEMPLATES), config.max_len, rng, config.piece_dropout).reshape(shape)
        for _ in range(config.piece_variants - 1)
    ]
    tables = {
        "train": variants[0],
        "train_dropout": np.concatenate(variants),
        "heldout": tok.encode(flat(TEST_TEMPLATES), config.max_len).reshape(len(TEST_TEMPLATES), len(phrases), -1),
    }
    return tok, tables


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    datasets = _names(config.datasets, DATASETS, "datasets")
    loss_names = _names(config.losses, LOSSES, "losses")
    mesh = make_mesh(config.num_devices or None)
    result, figure = {}, None
    for dataset in datasets:
        data = _load(dataset, config)
        tok, tables = token_tables(dataset, config)
        for loss in loss_names:
            model = build_model(config, len(tok), loss)
            params = train_dual_encoder(
                model, loss, data["train_images"], data["train_labels"], tables["train_dropout"], config,
                workdir / f"{dataset}_{loss}", mesh,
            )
            for k, v in evaluate(model, params, data, tables, config).items():
                result[f"{dataset}_test_{k}_{loss}"] = v
            result[f"{dataset}_learned_scale_{loss}"] = float(np.exp(params["log_scale"]))
            if figure is None:
                figure = similarity_figure(model, params, data, tables, dataset, loss, workdir / "clip_similarity.png")
    dirs = [workdir] + ([RESULTS_DIR] if config.write_results else [])
    if config.write_results:
        (RESULTS_DIR / figure.name).write_bytes(figure.read_bytes())
    write_results("clip", _markdown(config, result, datasets, loss_names, figure), {"config": config.to_dict(), **result}, dirs)
    return result


def similarity_figure(model, params, data, tables, dataset, loss, path: pathlib.Path) -> pathlib.Path:
    """Cosine similarity of one test image per class against the held-out captions of every class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = data["test_labels"]
    classes = [c for c in range(10) if np.any(y == c)]
    idx = [int(np.flatnonzero(y == c)[0]) for c in classes]
    images = data["test_images"][idx]
    img = embed(model, params, images, "encode_image")
    table = tables["heldout"]
    txt = embed(model, params, table[np.arange(len(classes)) % len(table), classes], "encode_text")
    sims = img @ txt.T
    phrases = class_phrases(dataset)
    caps = [TEST_TEMPLATES[i % len(TEST_TEMPLATES)].format(phrases[c]) for i, c in enumerate(classes)]
    n = len(classes)
    fig, ax = plt.subplots(figsize=(0.75 * n + 3, 0.75 * n + 2.5))
    im = ax.imshow(sims, cmap="viridis", vmin=-1, vmax=1)
    for i in range(n):
        ax.imshow(images[i], cmap="gray", extent=(-1.6, -0.6, i + 0.5, i - 0.5))  # the image, left of its row
        for j in range(n):
            ax.text(j, i, f"{sims[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w" if sims[i, j] < 0.5 else "k")
    ax.set_xlim(-1.7, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xticks(range(n), caps, rotation=60, ha="right", fontsize=7)
    ax.set_yticks([])
    ax.set_title(f"{dataset} test images x held-out captions ({loss}): cosine similarity", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def _markdown(config, result: dict, datasets, loss_names, figure: pathlib.Path) -> str:
    metrics = [
        ("zero-shot acc, held-out templates", "zeroshot_acc_heldout_templates"),
        ("zero-shot acc, training templates", "zeroshot_acc_train_templates"),
        ("image->text R@1", "image_to_text_recall_at_1"),
        ("image->text R@5", "image_to_text_recall_at_5"),
        ("text->image R@1", "text_to_image_recall_at_1"),
        ("text->image R@5", "text_to_image_recall_at_5"),
        ("linear probe acc (frozen image emb.)", "linear_probe_acc"),
    ]
    cols = [(d, x) for d in datasets for x in loss_names]
    head = "| test metric | " + " | ".join(f"{d} {x.upper()}" for d, x in cols) + " |"
    rule = "|---|" + "---:|" * len(cols)
    rows = [
        f"| {label} | " + " | ".join(f"{100 * result[f'{d}_test_{key}_{x}']:.1f}%" for d, x in cols) + " |"
        for label, key in metrics
    ]
    rows.append("| learned inverse temperature | " + " | ".join(f"{result[f'{d}_learned_scale_{x}']:.1f}" for d, x in cols) + " |")
    table = "\n".join([head, rule, *rows])
    tower = "CNN (conv32-pool-conv64-pool-dense)" if config.image_tower == "cnn" else "ViT (7x7 patches)"
    return f"""# CLIP-style dual encoder: Fashion-MNIST and MNIST with template captions

Image tower: {tower}; text tower: {config.depth}-layer transformer (width {config.width}) over word pieces;
linear projections to {config.embed_dim}-D, L2-normalized. AdamW {config.learning_rate} (cosine, {config.warmup_steps}
warm-up steps), batch {config.batch_size}, {config.num_epochs} epoch(s), seed {config.seed}, learnable temperature
(CLIP init 1/0.07, clipped at 100; SigLIP init scale 10, bias -10).

Captions: {len(TRAIN_TEMPLATES)} training templates, e.g. "{TRAIN_TEMPLATES[5]}"; {len(TEST_TEMPLATES)} held-out templates
used only at test time: {", ".join(f'"{t}"' for t in TEST_TEMPLATES)}. Word pieces of unseen words
("pixelated", "thumbnail") fall back to prefixes and characters.

Zero-shot: class embedding = normalized mean over templates of caption embeddings. Retrieval: between all
test images and the {len(TEST_TEMPLATES) * 10} distinct held-out captions (4 templates x 10 classes); captions describe a class, so
a hit is an item of the query's class (R@k = share of queries with a hit in the top k; image->text ranks 40
captions per image, text->image ranks the test images per caption). Linear probe: softmax regression on the
frozen image embeddings of {config.probe_train_subset or 'all'} training images, test accuracy.

{table}

![similarity]({figure.name})
"""
