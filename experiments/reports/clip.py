"""Report of the clip experiment: the results table (markdown + JSON) and the similarity picture."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from embeddings_jax.data.class_captions import TEST_TEMPLATES, TRAIN_TEMPLATES, class_phrases
from experiments.common import RESULTS_DIR, publish, write_results
from experiments.reports.plots import new_figure, save_figure

METRICS = (
    ("zero-shot acc, held-out templates", "zeroshot_acc_heldout_templates"),
    ("zero-shot acc, training templates", "zeroshot_acc_train_templates"),
    ("image->text R@1", "image_to_text_recall_at_1"),
    ("image->text R@5", "image_to_text_recall_at_5"),
    ("text->image R@1", "text_to_image_recall_at_1"),
    ("text->image R@5", "text_to_image_recall_at_5"),
    ("linear probe acc (frozen image emb.)", "linear_probe_acc"),
)


def write(config, result: dict, datasets: Sequence[str], losses: Sequence[str], example: dict,
          workdir: pathlib.Path) -> None:
    """Writes clip.{md,json} and clip_similarity.png to ``workdir`` (and to results/ with ``write_results``).

    example: ``dual_encoder.similarity_example`` plus the ``dataset`` and ``loss`` it shows.
    """
    figure = similarity_figure(example, workdir / "clip_similarity.png")
    dirs = [workdir] + ([RESULTS_DIR] if config.write_results else [])
    if config.write_results:
        publish(figure)
    write_results("clip", markdown(config, result, datasets, losses, figure.name),
                  {"config": config.to_dict(), **result}, dirs)


def similarity_figure(example: dict, path: pathlib.Path) -> pathlib.Path:
    """Heat map of image x caption cosine similarities, each image left of its row."""

    classes, images, sims = example["classes"], example["images"], example["sims"]
    phrases = class_phrases(example["dataset"])
    caps = [TEST_TEMPLATES[i % len(TEST_TEMPLATES)].format(phrases[c]) for i, c in enumerate(classes)]
    n = len(classes)
    fig, ax = new_figure(figsize=(0.75 * n + 3, 0.75 * n + 2.5))
    im = ax.imshow(sims, cmap="viridis", vmin=-1, vmax=1)
    for i in range(n):
        ax.imshow(images[i], cmap="gray", extent=(-1.6, -0.6, i + 0.5, i - 0.5))
        for j in range(n):
            ax.text(j, i, f"{sims[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w" if sims[i, j] < 0.5 else "k")
    ax.set_xlim(-1.7, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xticks(range(n), caps, rotation=60, ha="right", fontsize=7)
    ax.set_yticks([])
    ax.set_title(f"{example['dataset']} test images x held-out captions ({example['loss']}): cosine similarity", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    save_figure(fig, path, dpi=90, bbox_inches="tight")
    return path


def table(result: dict, datasets: Sequence[str], losses: Sequence[str]) -> str:
    """One column per (dataset, loss), one row per test metric, accuracies and recalls in percent."""
    cols = [(d, x) for d in datasets for x in losses]
    head = "| test metric | " + " | ".join(f"{d} {x.upper()}" for d, x in cols) + " |"
    rule = "|---|" + "---:|" * len(cols)
    rows = [
        f"| {label} | " + " | ".join(f"{100 * result[f'{d}_test_{key}_{x}']:.1f}%" for d, x in cols) + " |"
        for label, key in METRICS
    ]
    scales = " | ".join(f"{result[f'{d}_learned_scale_{x}']:.1f}" for d, x in cols)
    rows.append(f"| learned inverse temperature | {scales} |")
    return "\n".join([head, rule, *rows])


def markdown(config, result: dict, datasets: Sequence[str], losses: Sequence[str], figure: str) -> str:
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

{table(result, datasets, losses)}

![similarity]({figure})
"""

