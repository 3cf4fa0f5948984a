"""Sentences/second of `SentenceEncoder.encode` vs sentence-transformers (torch) on the same captions.

    python -m benchmarks.bert_encode [--n 2000] [--batch-size 64] [--repeats 3]

Both encode the same Flickr8k dev captions (short sentences, median 14 tokens) with
all-MiniLM-L6-v2, same batch size, unit-normalised output, and are timed alternately
(ours, peer, ours, peer, ...) after one warm-up pass each (ours compiles its bucket shapes there;
the cold time is reported separately). Reported: medians over ``--repeats`` runs. The peer runs
with torch's default thread count and with one thread (on a machine shared with other processes,
torch's OpenMP threads can be much slower than one thread); the speed-up key compares with the
faster of the two.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from benchmarks.common import device_name, write_result
from embeddings_jax.data.captions import load_flickr8k
from embeddings_jax.models.bert import SentenceEncoder, packaged_model_dir


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="number of captions")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    sentences = load_flickr8k("dev").captions[: args.n]
    model_dir = packaged_model_dir()
    ours = SentenceEncoder.from_pretrained(model_dir)
    torch_device = "cuda" if torch.cuda.is_available() else "cpu"
    peer = SentenceTransformer(str(model_dir), device=torch_device)

    default_threads = torch.get_num_threads()
    thread_counts = sorted({default_threads, 1}, reverse=True)

    def run_ours():
        return ours.encode(sentences, batch_size=args.batch_size, normalize=True)

    def run_peer(threads: int):
        torch.set_num_threads(threads)
        return peer.encode(sentences, batch_size=args.batch_size, normalize_embeddings=True)

    cold = _timed(run_ours)
    for t in thread_counts:
        _timed(functools.partial(run_peer, t))  # warm-up
    times = {"ours": [], **{t: [] for t in thread_counts}}
    for _ in range(args.repeats):
        times["ours"].append(_timed(run_ours))
        for t in thread_counts:
            times[t].append(_timed(functools.partial(run_peer, t)))
    a, b = run_ours(), run_peer(default_threads)
    min_cos = float(np.min(np.sum(a * b, axis=1)))

    n = len(sentences)
    t_ours = statistics.median(times["ours"])
    t_peer = {t: statistics.median(times[t]) for t in thread_counts}
    best = min(t_peer, key=t_peer.get)
    metrics = {
        "encode_sentences_per_second": n / t_ours,
        "encode_cold_seconds_including_compile": cold,
        "encode_speedup_vs_sentence_transformers": t_peer[best] / t_ours,
        f"encode_speedup_vs_sentence_transformers_threads{default_threads}": t_peer[default_threads] / t_ours,
        "min_cosine_vs_sentence_transformers": min_cos,
    }
    version = __import__("sentence_transformers").__version__
    peers = {
        f"sentence_transformers_threads{t}": {
            "sentences_per_second": n / t_peer[t], "version": version, "torch_version": torch.__version__,
            "torch_device": torch_device, "torch_threads": t,
        }
        for t in thread_counts
    }
    config = {"n_sentences": n, "batch_size": args.batch_size, "repeats": args.repeats, "model": "all-MiniLM-L6-v2",
              "data": "Flickr8k dev captions", "dtype": "float32"}
    print(f"| system | sentences/s ({device_name()}, batch {args.batch_size}, {n} captions) |\n|---|---:|")
    print(f"| embeddings_jax encode | {n / t_ours:,.0f} |")
    for t in thread_counts:
        print(f"| sentence-transformers ({torch_device}, {t} torch threads) | {n / t_peer[t]:,.0f} |")
    print(f"speed-up vs the faster peer {t_peer[best] / t_ours:.2f}x, cold first call {cold:.1f} s, "
          f"min cosine {min_cos:.6f}")
    path = write_result("bert_encode", config=config, metrics=metrics, peers=peers)
    print("wrote", path)
    return metrics


if __name__ == "__main__":
    main()
