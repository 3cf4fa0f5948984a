"""Texts/second of `SentenceEncoder.encode` vs sentence-transformers (torch) on the same texts.

    python -m benchmarks.bert_encode [--n 2000] [--batch-size 64] [--repeats 3] [--corpora flickr8k,scifact,paragraphs]

Both encode the same texts with all-MiniLM-L6-v2, the same ``batch_size`` argument and
unit-normalised output, and are timed alternately (ours float32, ours bfloat16, peer with 1 torch
thread, peer with 2, and again) after one warm-up pass each (ours compiles its shapes there; the
cold time is reported separately). Reported: medians over ``--repeats`` rounds. The speed-up keys
compare with the faster of the peer's 1- and 2-thread runs. Corpora: Flickr8k dev captions (short,
median 14 tokens), SciFact claims (scientific sentences) and "paragraphs" of five consecutive
Flickr8k captions (about 70 tokens: longer than a packed row).

Ours at float32 is the default path and numerically the peer's (cosine >= 0.99999); bfloat16
rounds the operands of the matrix products (``SentenceEncoder(dtype=jnp.bfloat16)``) and is
reported beside it with its own minimum cosine to the peer.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import device_name, write_result
from embeddings_jax.data import registry
from embeddings_jax.data.captions import load_flickr8k
from embeddings_jax.models.bert import SentenceEncoder, packaged_model_dir

TORCH_THREADS = (1, 2)
CORPORA = ("flickr8k", "scifact", "paragraphs")
_COMPILES = []  # one entry per XLA compilation in this process
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
jax.monitoring.register_event_duration_secs_listener(
    lambda event, _secs, **_: _COMPILES.append(event) if event == _COMPILE_EVENT else None)


def cpu_flags() -> set[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            return set(next((line.split(":", 1)[1] for line in f if line.startswith("flags")), "").split())
    except OSError:
        return set()


def load_texts(corpus: str, n: int) -> list[str]:
    """The first ``n`` texts of a benchmark corpus."""
    if corpus == "flickr8k":
        return load_flickr8k("dev").captions[:n]
    if corpus == "paragraphs":
        caps = load_flickr8k("dev").captions
        return [" ".join(caps[i : i + 5]) for i in range(0, min(len(caps) - 4, 5 * n), 5)]
    if corpus == "scifact":
        with open(registry.fetch("scifact", "queries.jsonl"), encoding="utf-8") as f:
            return [json.loads(line)["text"] for line in f][:n]
    raise ValueError(f"unknown corpus {corpus!r}; choose from {CORPORA}")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


def bench_corpus(corpus, texts, ours, peer, batch_size, repeats) -> tuple[dict, dict]:
    """(metrics, peer figures) of one corpus; metric keys start with ``corpus_``."""
    import torch

    def run_peer(threads: int):
        torch.set_num_threads(threads)
        return peer.encode(texts, batch_size=batch_size, normalize_embeddings=True)

    systems = {name: functools.partial(enc.encode, texts, batch_size=batch_size, normalize=True)
               for name, enc in ours.items()}
    systems.update({t: functools.partial(run_peer, t) for t in TORCH_THREADS})
    cold = {name: _timed(systems[name]) for name in ours}
    for t in TORCH_THREADS:
        _timed(systems[t])  # warm-up
    compiled = len(_COMPILES)
    times = {name: [] for name in systems}
    for _ in range(repeats):
        for name, fn in systems.items():
            times[name].append(_timed(fn))
    recompiles = len(_COMPILES) - compiled
    ref = run_peer(max(TORCH_THREADS))
    n = len(texts)
    med = {name: statistics.median(v) for name, v in times.items()}
    best = min(TORCH_THREADS, key=med.get)
    metrics = {f"{corpus}_n_texts": n, f"{corpus}_recompiles_during_timed_runs": recompiles}
    for name in ours:
        tag = "" if name == "float32" else "_bf16"
        metrics.update({
            f"{corpus}_encode{tag}_texts_per_second": n / med[name],
            f"{corpus}_encode{tag}_speedup_vs_sentence_transformers": med[best] / med[name],
            **{f"{corpus}_encode{tag}_speedup_vs_sentence_transformers_threads{t}": med[t] / med[name]
               for t in TORCH_THREADS},
            f"{corpus}_encode{tag}_cold_seconds_including_compile": cold[name],
            f"{corpus}_min_cosine{tag}_vs_sentence_transformers": _min_cosine(systems[name](), ref),
        })
    peers = {t: n / med[t] for t in TORCH_THREADS}
    return metrics, peers


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="texts per corpus")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--corpora", default=",".join(CORPORA))
    args = ap.parse_args(argv)
    corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]

    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    load_start = os.getloadavg()
    model_dir = packaged_model_dir()
    ours = {"float32": SentenceEncoder(model_dir), "bfloat16": SentenceEncoder(model_dir, dtype=jnp.bfloat16)}
    torch_device = "cuda" if torch.cuda.is_available() else "cpu"
    peer = SentenceTransformer(str(model_dir), device=torch_device)
    default_threads = torch.get_num_threads()

    metrics, peer_rates = {}, {}
    for corpus in corpora:
        m, p = bench_corpus(corpus, load_texts(corpus, args.n), ours, peer, args.batch_size, args.repeats)
        metrics.update(m)
        peer_rates[corpus] = p
    torch.set_num_threads(default_threads)
    first = corpora[0]  # the headline keys: the first corpus (Flickr8k captions by default)
    for key in ("encode_texts_per_second", "encode_speedup_vs_sentence_transformers",
                "encode_bf16_texts_per_second", "encode_bf16_speedup_vs_sentence_transformers",
                "min_cosine_vs_sentence_transformers", "min_cosine_bf16_vs_sentence_transformers"):
        metrics[key] = metrics[f"{first}_{key}"]

    flags = cpu_flags()
    peers = {
        f"sentence_transformers_threads{t}": {
            "texts_per_second": {c: peer_rates[c][t] for c in corpora},
            "version": sentence_transformers.__version__, "torch_version": torch.__version__,
            "torch_device": torch_device, "torch_threads": t,
        }
        for t in TORCH_THREADS
    }
    config = {"n_texts": args.n, "batch_size": args.batch_size, "repeats": args.repeats, "model": "all-MiniLM-L6-v2",
              "corpora": corpora, "dtypes": list(ours), "torch_threads": list(TORCH_THREADS),
              "torch_default_threads": default_threads,
              "cpu_bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"}),
              "load_average_start_end": [load_start[0], os.getloadavg()[0]]}
    print(f"| corpus | ours f32 | ours bf16 | ST 1 thread | ST 2 threads | f32 speed-up | bf16 speed-up |"
          f"  ({device_name()}, texts/s, batch {args.batch_size})\n|---|---:|---:|---:|---:|---:|---:|")
    for c in corpora:
        print(f"| {c} | {metrics[f'{c}_encode_texts_per_second']:,.0f} | "
              f"{metrics[f'{c}_encode_bf16_texts_per_second']:,.0f} | {peer_rates[c][1]:,.0f} | "
              f"{peer_rates[c][2]:,.0f} | {metrics[f'{c}_encode_speedup_vs_sentence_transformers']:.2f}x | "
              f"{metrics[f'{c}_encode_bf16_speedup_vs_sentence_transformers']:.2f}x |")
    print(f"min cosine to the peer: f32 {metrics['min_cosine_vs_sentence_transformers']:.6f}, "
          f"bf16 {metrics['min_cosine_bf16_vs_sentence_transformers']:.6f}; load average "
          f"{config['load_average_start_end'][0]:.2f} -> {config['load_average_start_end'][1]:.2f}")
    path = write_result("bert_encode", config=config, metrics=metrics, peers=peers)
    print("wrote", path)
    return metrics


if __name__ == "__main__":
    main()
