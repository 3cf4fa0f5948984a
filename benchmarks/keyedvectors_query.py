"""``KeyedVectors.most_similar`` latency, ours vs gensim, on the same random vectors.

    python -m benchmarks.keyedvectors_query [--sizes 100000x100,300000x300,10000x100] [--repeats 31]

For each ``VxD`` (Gaussian float32 vectors, words ``w0..``): the first ``most_similar("w5")`` call
on a fresh object (ours builds its norms, as gensim does) and the median of ``--repeats`` later
calls, ours and gensim alternating in the same process. Also timed: a restricted query
(``restrict_vocab=V/10``) and our jitted ``FlatIndex`` on the same unit vectors (the batched-query
path), to show which single-query path is faster. Checks that both libraries return the same list.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks.common import write_result
from embeddings_jax.vectors import KeyedVectors


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - t0)


def _alternating(fns: dict, repeats: int) -> dict:
    """Median ms of each function, called in turn (order rotated every round) ``repeats`` times."""
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(_ms(fns[name]))
    return {name: statistics.median(t) for name, t in times.items()}


def run_size(v: int, d: int, repeats: int) -> tuple[dict, dict]:
    from gensim.models import KeyedVectors as GensimKV

    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(v, d)).astype(np.float32)
    words = [f"w{i}" for i in range(v)]
    ours = KeyedVectors(words, vecs)
    theirs = GensimKV(d)
    theirs.add_vectors(words, vecs)
    tag = f"{v}x{d}"

    first_ours = _ms(lambda: ours.most_similar("w5"))
    first_theirs = _ms(lambda: theirs.most_similar("w5"))
    limit = max(v // 10, 1)
    unit = ours.get_vector("w5", norm=True)[None]
    first_flat = _ms(lambda: ours.index().search(unit, 11))  # compiles and copies the unit vectors
    med = _alternating({
        "ours": lambda: ours.most_similar("w5"),
        "gensim": lambda: theirs.most_similar("w5"),
        "ours_restrict": lambda: ours.most_similar("w5", restrict_vocab=limit),
        "gensim_restrict": lambda: theirs.most_similar("w5", restrict_vocab=limit),
        "ours_flat_index": lambda: ours.index().search(unit, 11),
    }, repeats)  # fmt: skip
    same = [w for w, _ in ours.most_similar("w5")] == [w for w, _ in theirs.most_similar("w5")]
    metrics = {
        f"most_similar_first_call_ms_{tag}": first_ours,
        f"most_similar_repeat_ms_{tag}": med["ours"],
        f"most_similar_repeat_speedup_vs_gensim_{tag}": med["gensim"] / med["ours"],
        f"most_similar_restrict_vocab_repeat_ms_{tag}": med["ours_restrict"],
        f"flat_index_search_first_call_ms_{tag}": first_flat,
        f"flat_index_search_repeat_ms_{tag}": med["ours_flat_index"],
        f"most_similar_same_top10_as_gensim_{tag}": float(same),
    }
    peers = {
        f"most_similar_first_call_ms_{tag}": first_theirs,
        f"most_similar_repeat_ms_{tag}": med["gensim"],
        f"most_similar_restrict_vocab_repeat_ms_{tag}": med["gensim_restrict"],
    }
    return metrics, peers


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000x100,300000x300,10000x100", help="comma-separated VxD")
    ap.add_argument("--repeats", type=int, default=31)
    args = ap.parse_args(argv)
    import gensim

    metrics, peers = {}, {}
    for size in args.sizes.split(","):
        v, d = (int(x) for x in size.lower().split("x"))
        m, p = run_size(v, d, args.repeats)
        metrics.update(m)
        peers.update(p)
        print(f"{size:>12}: ours first {m[f'most_similar_first_call_ms_{size}']:8.1f} ms, "
              f"repeat {m[f'most_similar_repeat_ms_{size}']:6.2f} ms | gensim first "
              f"{p[f'most_similar_first_call_ms_{size}']:8.1f} ms, repeat {p[f'most_similar_repeat_ms_{size}']:6.2f} ms"
              f" | FlatIndex repeat {m[f'flat_index_search_repeat_ms_{size}']:6.2f} ms")  # fmt: skip
    config = {"sizes": args.sizes, "repeats": args.repeats, "query": "most_similar('w5'), topn=10",
              "data": "Gaussian float32 vectors, seed 0"}  # fmt: skip
    path = write_result("keyedvectors_query", config=config, metrics=metrics,
                        peers={"gensim": {"version": gensim.__version__, **peers}})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
