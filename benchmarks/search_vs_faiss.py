"""Vector search, embeddings_jax.index vs faiss-cpu, ann-benchmarks protocol.

Datasets: fashion-mnist-784-euclidean and MNIST from the registry (60,000 train images as the base,
10,000 test images as queries, raw pixel values as float32, k=10). Ground truth is exact: float32
BLAS candidates (top 100, numpy) re-ranked with exact integer arithmetic. Recall@10 counts returned
neighbours whose true distance is within the 10th true distance + 1e-3 (the ann-benchmarks rule, so
ties count). Both libraries index the same data at matched settings (same nlist, nprobe, PQ code size,
k-means iterations) and QPS is the median over ``--runs`` timed searches of all queries. FAISS runs
one OpenMP thread per core; our indexes get a mesh over the cores exposed as JAX CPU devices
(``--cpu-devices``, default all cores): the exhaustive indexes shard the database over it, the IVF
indexes split query batches over it.

Also a synthetic 1M x 128 Gaussian database with 10k queries (exact search) with peak RSS.

  python -m benchmarks.search_vs_faiss                 # full run, writes JSON + plot
  python -m benchmarks.search_vs_faiss --quick         # seconds-long smoke run (subsets, no files)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

import numpy as np

from embeddings_jax.train.atomic import atomic_write

K = 10


# ------------------------------------------------------------------------------------------ helpers
class PeakRSS:
    """Samples this process's resident set size in a thread; ``peak`` in bytes over the ``with`` block."""

    def __init__(self, interval: float = 0.005):
        import psutil

        self._proc, self._interval, self.peak = psutil.Process(), interval, 0

    def __enter__(self):
        self.base = self._proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def timed(fn, runs: int, warmup=None):
    """``(result, median seconds)`` over ``runs`` calls after one warm-up call (compiles JAX programs)."""
    out = (warmup or fn)()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def exact_ground_truth(base: np.ndarray, queries: np.ndarray, k: int, shortlist: int = 100, batch: int = 1000):
    """Exact k nearest (squared L2) of integer-valued data: numpy float32 shortlist, exact int64 re-rank.

    Returns ``(ids [Q, k], squared distances [Q, k] float64)``; ties go to the lower id.
    """
    base_i = base.astype(np.int64)
    base_sq = np.einsum("nd,nd->n", base, base)
    ids_out, d_out = [], []
    for s in range(0, len(queries), batch):
        q = queries[s:s + batch]
        approx = base_sq[None, :] - 2.0 * (q @ base.T)
        cand = np.argpartition(approx, shortlist, axis=1)[:, :shortlist]
        diff = q.astype(np.int64)[:, None, :] - base_i[cand]
        exact = np.einsum("qkd,qkd->qk", diff, diff)
        order = np.lexsort((cand, exact), axis=1)[:, :k]
        ids_out.append(np.take_along_axis(cand, order, 1))
        d_out.append(np.take_along_axis(exact, order, 1).astype(np.float64))
    return np.concatenate(ids_out), np.concatenate(d_out)


def recall_at_k(base, queries, found_ids, true_d, k: int = K, eps: float = 1e-3) -> float:
    """ann-benchmarks k-nn recall: returned ids whose true distance <= the k-th true distance + eps."""
    ids = np.where(found_ids < 0, 0, found_ids)
    diff = queries.astype(np.float64)[:, None, :] - base[ids].astype(np.float64)
    d = np.einsum("qkd,qkd->qk", diff, diff)
    hits = (d <= true_d[:, k - 1:k] + eps) & (found_ids >= 0)
    return float(hits[:, :k].sum() / (len(queries) * k))


def load_images(dataset: str, quick: bool):
    from embeddings_jax.data.images import load_mnist

    base = load_mnist("train", dataset)[0].reshape(60000, -1).astype(np.float32)
    queries = load_mnist("test", dataset)[0].reshape(10000, -1).astype(np.float32)
    if quick:
        base, queries = base[:6000], queries[:200]
    return base, queries


# ------------------------------------------------------------------------------------------ methods
def all_devices_mesh():
    """A ``("data",)`` mesh over every JAX device, or ``None`` on a single device."""
    import jax

    from embeddings_jax.train.sharding import make_mesh

    return make_mesh() if jax.device_count() > 1 else None


def build_pairs(dim: int, nlist: int, m: int, rescore: int, kmeans_iters: int):
    """(name, jax builder, faiss builder, knob name, knob values) at matched settings.

    Our indexes get a mesh over all JAX devices (on CPU, ``--cpu-devices`` cores exposed as devices), as
    FAISS gets one OpenMP thread per core: the exhaustive indexes shard their database over it, the IVF
    indexes split each query batch over it.
    """
    import faiss

    from embeddings_jax import index as ej

    mesh = all_devices_mesh()

    def faiss_ivf(quantizer_index):
        quantizer_index.cp.niter = kmeans_iters
        return quantizer_index

    def faiss_flat():
        return faiss.IndexFlatL2(dim)

    def faiss_sq8():
        return faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)

    def faiss_sq8_refine():
        ref = faiss.IndexRefineFlat(faiss_sq8())
        ref.k_factor = rescore
        return ref

    def faiss_ivfflat():
        return faiss_ivf(faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist, faiss.METRIC_L2))

    def faiss_ivfpq():
        index = faiss_ivf(faiss.IndexIVFPQ(faiss.IndexFlatL2(dim), dim, nlist, m, 8))
        index.pq.cp.niter = kmeans_iters
        return index

    return [
        ("flat", lambda: ej.FlatIndex(dim, "l2", mesh=mesh), faiss_flat, False),
        ("sq8", lambda: ej.SQ8Index(dim, "l2", mesh=mesh), faiss_sq8, False),
        (f"sq8_rescore{rescore}", lambda: ej.SQ8Index(dim, "l2", rescore=rescore, mesh=mesh), faiss_sq8_refine,
         False),
        ("ivf_flat", lambda: ej.IVFIndex(dim, "l2", nlist, kmeans_iters=kmeans_iters, mesh=mesh), faiss_ivfflat, True),
        ("ivf_pq", lambda: ej.IVFPQIndex(dim, "l2", nlist, m, kmeans_iters=kmeans_iters, pq_iters=kmeans_iters,
                                         mesh=mesh), faiss_ivfpq, True),
    ]


def set_nprobe(index, nprobe):
    if hasattr(index, "nprobe"):
        index.nprobe = nprobe


def bench_dataset(dataset: str, args) -> tuple[dict, dict]:
    import faiss

    base, queries = load_images(dataset, args.quick)
    t0 = time.perf_counter()
    _true_ids, true_d = exact_ground_truth(base, queries, K)
    print(f"\n== {dataset}: base {base.shape}, queries {queries.shape}, ground truth {time.perf_counter() - t0:.1f}s")
    results = {}
    nprobes = [int(p) for p in args.nprobes.split(",")] if not args.quick else [1, 4]
    for name, make_ours, make_faiss, has_nprobe in build_pairs(base.shape[1], args.nlist, args.m, args.rescore,
                                                               args.kmeans_iters):
        if args.methods and name.split("_rescore")[0] not in args.methods.split(","):
            continue
        entry = {}
        for lib, make in (("jax", make_ours), ("faiss", make_faiss)):
            index = make()
            t0 = time.perf_counter()
            if not index.is_trained:
                index.train(base)
            index.add(base)
            build_s = time.perf_counter() - t0
            points = []
            for nprobe in nprobes if has_nprobe else [None]:
                if nprobe is not None:
                    set_nprobe(index, nprobe)
                # exhaustive indexes run one fixed-shape program per query batch: warm up on two batches
                warm = (lambda index=index: index.search(queries[:2048], K)) if not has_nprobe else None
                (_d, ids), sec = timed(lambda index=index: index.search(queries, K), args.runs, warm)
                rec = recall_at_k(base, queries, np.asarray(ids), true_d)
                points.append({"nprobe": nprobe, "qps": len(queries) / sec, "recall_at_10": rec})
                tag = f"nprobe={nprobe}" if nprobe else ""
                print(f"  {name:<14} {lib:<6} {tag:<10} recall@10 {rec:.4f}  QPS {len(queries) / sec:9.1f}")
            entry[lib] = {"build_s": build_s, "points": points}
            if lib == "jax" and hasattr(index, "code_bytes"):
                entry["jax"]["code_bytes"] = int(index.code_bytes)
            if lib == "faiss" and hasattr(faiss, "extract_index_ivf") and has_nprobe:
                entry["faiss"]["code_size"] = int(faiss.extract_index_ivf(index).code_size)
            del index
        results[name] = entry
    return results, {"base": list(base.shape), "queries": list(queries.shape)}


def summarize(dataset: str, results: dict, metrics: dict, peers: dict, rescore: int, dim: int, n: int):
    """Flattens into ``<dataset>_<method>_...`` metric keys (ours) and peer keys (faiss)."""
    for name, entry in results.items():
        ours, theirs = entry["jax"]["points"], entry["faiss"]["points"]
        if len(ours) == 1:
            metrics[f"{dataset}_{name}_recall_at_10"] = ours[0]["recall_at_10"]
            metrics[f"{dataset}_{name}_qps"] = ours[0]["qps"]
            peers[f"faiss_{dataset}_{name}_recall_at_10"] = theirs[0]["recall_at_10"]
            peers[f"faiss_{dataset}_{name}_qps"] = theirs[0]["qps"]
            metrics[f"{dataset}_{name}_qps_speedup_vs_faiss"] = ours[0]["qps"] / theirs[0]["qps"]
        else:
            for a, b in zip(ours, theirs):
                p = a["nprobe"]
                metrics[f"{dataset}_{name}_nprobe{p}_recall_at_10"] = a["recall_at_10"]
                metrics[f"{dataset}_{name}_nprobe{p}_qps"] = a["qps"]
                peers[f"faiss_{dataset}_{name}_nprobe{p}_recall_at_10"] = b["recall_at_10"]
                peers[f"faiss_{dataset}_{name}_nprobe{p}_qps"] = b["qps"]
                metrics[f"{dataset}_{name}_nprobe{p}_qps_speedup_vs_faiss"] = a["qps"] / b["qps"]
                metrics[f"{dataset}_{name}_nprobe{p}_recall_delta_vs_faiss"] = a["recall_at_10"] - b["recall_at_10"]
            metrics[f"{dataset}_{name}_qps_at_equal_recall_speedup_vs_faiss"] = equal_recall_speedup(ours, theirs)
        if "code_bytes" in entry["jax"]:
            metrics[f"{dataset}_{name}_bytes_per_vector"] = entry["jax"]["code_bytes"] / n
    metrics[f"{dataset}_float32_bytes_per_vector"] = 4 * dim


def equal_recall_speedup(ours: list[dict], theirs: list[dict]) -> float | None:
    """Median over FAISS's points of (our QPS interpolated at FAISS's recall) / FAISS's QPS, on the
    recall range both curves cover (log-QPS interpolated linearly in recall)."""
    r_o = np.array([p["recall_at_10"] for p in ours])
    q_o = np.log([p["qps"] for p in ours])
    order = np.argsort(r_o)
    r_o, q_o = r_o[order], q_o[order]
    ratios = []
    for p in theirs:
        r = p["recall_at_10"]
        if r_o[0] <= r <= r_o[-1]:
            ratios.append(float(np.exp(np.interp(r, r_o, q_o)) / p["qps"]))
    return float(np.median(ratios)) if ratios else None


def bench_synthetic(args) -> tuple[dict, dict]:
    """Exact search on 1M x 128 Gaussian vectors, 10k queries: QPS (median of ``--runs``) and peak RSS
    for both libraries."""
    import faiss

    from embeddings_jax.index import FlatIndex

    n, nq, dim = (1_000_000, 10_000, 128) if not args.quick else (50_000, 500, 128)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((n, dim), dtype=np.float32)
    queries = rng.standard_normal((nq, dim), dtype=np.float32)
    db_bytes = base.nbytes
    out, peers = {}, {}
    for lib in ("jax", "faiss"):
        with PeakRSS() as mem:
            index = FlatIndex(dim, "l2", mesh=all_devices_mesh()) if lib == "jax" else faiss.IndexFlatL2(dim)
            index.add(base)
            (_d, ids), sec = timed(lambda index=index: index.search(queries, K), args.runs,
                                   lambda index=index: index.search(queries[:1000], K))  # warm-up compiles
        extra = mem.peak - mem.base
        print(f"  synthetic 1M flat {lib:<6} QPS {nq / sec:9.1f}  peak RSS above start {extra / 2**30:.2f} GiB "
              f"({extra / db_bytes:.2f}x the {db_bytes / 2**30:.2f} GiB database)")
        target = out if lib == "jax" else peers
        prefix = "" if lib == "jax" else "faiss_"
        target[f"{prefix}synthetic_1m_flat_qps"] = nq / sec
        target[f"{prefix}synthetic_1m_flat_peak_rss_gib"] = extra / 2**30
        target[f"{prefix}synthetic_1m_flat_peak_rss_over_database"] = extra / db_bytes
        if lib == "jax":
            ours_ids = np.asarray(ids)
        else:
            out["synthetic_1m_flat_id_agreement_vs_faiss"] = float((ours_ids == np.asarray(ids)).mean())
        del index
    out["synthetic_1m_flat_qps_speedup_vs_faiss"] = out["synthetic_1m_flat_qps"] / peers["faiss_synthetic_1m_flat_qps"]
    return out, peers


def plot(all_results: dict, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_results), figsize=(6.5 * len(all_results), 4.8), squeeze=False)
    styles = {"jax": "-o", "faiss": "--s"}
    colors = {"ivf_flat": "tab:blue", "ivf_pq": "tab:orange", "flat": "tab:green", "sq8": "tab:red"}
    for ax, (dataset, results) in zip(axes[0], all_results.items()):
        for name, entry in results.items():
            color = colors.get(name, "tab:purple")
            for lib in ("jax", "faiss"):
                pts = entry[lib]["points"]
                r = [p["recall_at_10"] for p in pts]
                q = [p["qps"] for p in pts]
                ax.plot(r, q, styles[lib], color=color, label=f"{name} ({'embeddings_jax' if lib == 'jax' else 'faiss-cpu'})",
                        markersize=5, alpha=0.9)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries / second (log)")
        ax.set_title(f"{dataset}: 60k base, 10k queries, k=10")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="fashion_mnist,mnist")
    parser.add_argument("--runs", type=int, default=3, help="timed searches per point (median)")
    parser.add_argument("--nlist", type=int, default=512)
    parser.add_argument("--m", type=int, default=16, help="PQ subquantizers (bytes per IVF-PQ code)")
    parser.add_argument("--rescore", type=int, default=4, help="SQ8 re-scoring shortlist factor (k_factor)")
    parser.add_argument("--kmeans-iters", type=int, default=10)
    parser.add_argument("--nprobes", default="1,2,4,8,16,32", help="IVF cells scanned per query (sweep)")
    parser.add_argument("--methods", default="", help="subset of flat,sq8,ivf_flat,ivf_pq (default: all)")
    parser.add_argument("--name", default="search_vs_faiss", help="result file stem (for partial re-runs)")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny subsets; writes nothing")
    parser.add_argument("--cpu-devices", type=int, default=os.cpu_count(),
                        help="CPU cores exposed as JAX devices (the mesh our indexes search on)")
    args = parser.parse_args(argv)
    # read when JAX starts its CPU backend, which no import above has done yet
    os.environ["XLA_FLAGS"] = (f"{os.environ.get('XLA_FLAGS', '')} "
                               f"--xla_force_host_platform_device_count={args.cpu_devices}")
    if args.quick:
        args.nlist, args.runs = min(args.nlist, 64), 1

    import faiss

    from benchmarks import common

    config = {**vars(args), "k": K, "faiss_version": faiss.__version__, "faiss_threads": faiss.omp_get_max_threads(),
              "protocol": "ann-benchmarks: train split as base, test split as queries, exact ground truth"}
    metrics, peers, all_results = {}, {}, {}
    for dataset in args.datasets.split(","):
        results, shapes = bench_dataset(dataset, args)
        all_results[dataset] = results
        summarize(dataset, results, metrics, peers, args.rescore, shapes["base"][1], shapes["base"][0])
    if not args.skip_synthetic:
        print("\n== synthetic 1M x 128, 10k queries, exact search")
        m, p = bench_synthetic(args)
        metrics.update(m)
        peers.update(p)
    print("\n" + json.dumps(metrics, indent=1))
    if args.quick:
        plot(all_results, "/tmp/search_vs_faiss-quick.png")
        return metrics
    command = " ".join(["nice -n 5 python -m benchmarks.search_vs_faiss", *(argv if argv is not None else sys.argv[1:])])
    path = common.write_result(args.name, config=config, metrics=metrics, peers=peers, command=command)
    raw = path.with_name(f"{args.name}-{common.device_name()}-curves.json")
    with atomic_write(raw) as f:
        f.write(json.dumps(all_results, indent=1) + "\n")
    png = path.with_name(f"{args.name}-{common.device_name()}.png")
    plot(all_results, png)
    print(f"wrote {path}, {raw} and {png}")
    return metrics


if __name__ == "__main__":
    main()
