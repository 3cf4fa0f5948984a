"""Jitted batched beam search vs a straightforward Python-loop beam search of the same model.

    python -m benchmarks.beam_search [--workdir DIR] [--sentences 32] [--beam 4] [--max-len 32]

``--workdir``: a trained ``embeddings-jax seq2seq`` run (params.msgpack, tokenizers.json) and its
validation sentences; without it a randomly initialised model of the CPU config translates
Multi30k validation sentences (random weights rarely emit EOS: every step up to max_len runs).
Both searches get the same encoder cache; the Python loop calls a jitted model step and does the
beam bookkeeping in Python, one sentence at a time. Reports sentences/second (median of repeats)
and checks that both return the same best sequences.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from benchmarks.common import median_time, write_result
from embeddings_jax import decoding
from embeddings_jax.data import translation
from embeddings_jax.models import seq2seq as s2s

# The untrained model: the sizes and vocabulary of `embeddings-jax seq2seq --config cpu`.
CPU_MODEL = {"embed_dim": 128, "hidden_dim": 256, "attention_dim": 128, "num_layers": 1,
             "dropout": 0.2}
CPU_MIN_FREQ = 2


def setup(workdir: str | None, n: int):
    if workdir:
        model, params, src_tok, _, config = s2s.load_model(workdir)
        pairs = (config.dataset, config.src, config.tgt, config.fra_eng_val_fraction)
        sentences = translation.load_pairs(*pairs)[2][:n]
        source = f"trained model in {workdir}"
    else:
        src_texts, tgt_texts, val_src, _ = translation.load_pairs("multi30k", "en", "de")
        src_tok = translation.make_tokenizer("word", src_texts, min_freq=CPU_MIN_FREQ)
        tgt_tok = translation.make_tokenizer("word", tgt_texts, min_freq=CPU_MIN_FREQ)
        model = s2s.Seq2Seq(src_tok.vocab_size, tgt_tok.vocab_size, **CPU_MODEL)
        params = s2s.init_params(model, jax.random.PRNGKey(0))
        sentences = val_src[:n]
        source = "randomly initialised CPU-config model"
    ids = translation.encode_sources(sentences, src_tok, 64)
    src, mask = translation.pad(ids, max(map(len, ids)))
    cache = s2s.encode(model, params, src, mask)
    return model, params, cache, source


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--sentences", type=int, default=32)
    ap.add_argument(
        "--python-sentences", type=int, default=8, help="sentences timed in the Python loop"
    )
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=0.6)
    ap.add_argument("--max-len", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    model, params, cache, source = setup(args.workdir, args.sentences)
    search_args = (args.beam, args.alpha, translation.EOS, args.max_len)
    kw = {"beam_size": args.beam, "alpha": args.alpha, "max_len": args.max_len}

    def jitted():
        return s2s.beam_search_ids(model, params, cache, **kw)

    jit_seconds = median_time(jitted, repeats=args.repeats)
    jit_seqs, _ = jitted()

    m = min(args.python_sentences, args.sentences)
    sub = jax.tree_util.tree_map(lambda x: x[:m], cache)
    step = s2s.jitted_step_fn(model, params)
    decoding.python_beam_search(
        jax.tree_util.tree_map(lambda x: x[:1], cache), step, *search_args, bos_id=translation.BOS
    )  # warm-up
    times = []
    for _ in range(max(1, args.repeats // 2)):
        t0 = time.perf_counter()
        ref_seqs, _ = decoding.python_beam_search(sub, step, *search_args, bos_id=translation.BOS)
        times.append(time.perf_counter() - t0)
    py_seconds = float(np.median(times))

    equal = float(np.mean(np.all(np.asarray(jit_seqs)[:m, 0] == ref_seqs[:, 0], axis=-1)))
    jit_sps, py_sps = args.sentences / jit_seconds, m / py_seconds
    lengths = (np.asarray(jit_seqs)[:, 0] != translation.PAD).sum(-1)
    metrics = {
        "jit_beam_search_sentences_per_second": jit_sps,
        "python_loop_sentences_per_second": py_sps,
        "beam_search_speedup_vs_python_loop": jit_sps / py_sps,
        "best_sequences_equal_fraction": equal,
        "mean_output_tokens": float(lengths.mean()),
    }
    print(f"{'search':<24}{'sentences/s':>14}")
    print(f"{'jitted beam search':<24}{jit_sps:>14.2f}")
    print(f"{'Python-loop beam search':<24}{py_sps:>14.2f}")
    print(f"speedup {jit_sps / py_sps:.1f}x; same best sequences on {equal:.0%} of {m} sentences")
    path = write_result(
        "beam_search",
        config={
            **vars(args),
            "model": source,
            "vocab": int(model.tgt_vocab),
            "hidden_dim": int(model.hidden_dim),
        },
        metrics=metrics,
        peers={"python_loop": {"sentences_per_second": py_sps, "sentences": m}},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
