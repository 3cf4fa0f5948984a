"""Report of the bert experiment: ``bert.{md,json}`` from the retrieval metrics of each stage."""

from __future__ import annotations

from experiments.common import write_results

METRICS = ("recall@1", "recall@5", "recall@10", "ndcg@10")


def _key(config: dict, stage: str, pooling: str, metric: str) -> str:
    return f"flickr8k_{config['eval_split']}_{stage}_{pooling}_{metric.replace('@', '_at_')}"


def flatten(config: dict, results: dict) -> dict:
    """``{stage: {pooling: {metric: value}}}`` -> the JSON's keys (dataset, split, stage, pooling,
    metric), plus the nDCG@10 gain of fine-tuning for the fine-tuned pooling."""
    flat = {
        _key(config, stage, p, name): m[name]
        for stage, per_pooling in results.items()
        for p, m in per_pooling.items()
        for name in METRICS
    }
    if config["finetune"]:
        p = config["finetune_pooling"]
        gain = results["finetuned"][p]["ndcg@10"] - results["zero_shot"][p]["ndcg@10"]
        flat[f"flickr8k_{config['eval_split']}_ndcg_at_10_gain_{p}"] = gain
    return flat


def write(config: dict, results: dict, n_queries: int, directories) -> dict:
    """Writes ``bert.md`` and ``bert.json`` into each directory; returns the flat metrics."""
    flat = flatten(config, results)
    write_results("bert", markdown(config, flat, n_queries), {"config": config, **flat}, directories)
    return flat


def markdown(config: dict, flat: dict, n_queries: int) -> str:
    """The results page from ``bert.json``'s config and metrics (``n_queries`` captions queried)."""
    stages = ("zero_shot", "finetuned") if config["finetune"] else ("zero_shot",)
    poolings = dict.fromkeys(p.strip() for p in config["poolings"].split(",") if p.strip())
    header = "| stage | pooling | R@1 | R@5 | R@10 | nDCG@10 |\n|---|---|---:|---:|---:|---:|"
    rows = [
        f"| {stage} | `{p}` | "
        + " | ".join(f"{flat[_key(config, stage, p, k)]:.4f}" for k in METRICS) + " |"
        for stage in stages
        for p in poolings
    ]
    c = config
    tune = (
        f"Fine-tuning: `{c['finetune_pooling']}` pooling, {c['steps']} steps x {c['batch_size']} caption pairs "
        f"(one pair per train image per batch), symmetric in-batch softmax at temperature {c['temperature']}, "
        f"AdamW lr {c['learning_rate']} (warm-up {c['warmup_fraction']:.0%}, linear decay), weight decay "
        f"{c['weight_decay']}, dropout on, inputs truncated to {c['seq_len']} tokens, seed {c['seed']}."
        if c["finetune"] else "No fine-tuning."
    )
    return f"""# BERT sentence embeddings: Flickr8k caption-to-caption retrieval

Model: all-MiniLM-L6-v2 (6 layers, 384-d) loaded from its Hugging Face files into the Flax `BertEncoder`.
Queries: {n_queries} {c['eval_split']}-split captions; each searches all other {c['eval_split']} captions
(exact cosine, `FlatIndex`); relevant = the other captions of the same image (4 per query), so
R@k = hits in the top k / 4 (R@1 is at most 0.25).
Poolings: `cls` = [CLS] of the last layer; `mean` = masked mean of the last layer (the model's own
sentence-transformers pooling); `mean_second_to_last` = masked mean of layer L-1; `sum_last4` /
`concat_last4` / `mean_last4` = word vectors (word pieces averaged back into words) from the
sum / concatenation / mean of the last four layers, averaged over the words of the caption.

{tune}

{header}
{chr(10).join(rows)}

Caveat: all-MiniLM-L6-v2 was trained by its authors on about 1B sentence pairs that include
Flickr30k captions (per its model card); Flickr30k was built by the same group as an extension of
Flickr8k, so the zero-shot model may have seen other captions of some of these test images.
`sum_last4` and `mean_last4` differ by a factor of 4 only, so under cosine they rank identically.
"""
