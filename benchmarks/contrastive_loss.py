"""Reference vs blockwise CLIP loss, forward + backward: step time and peak memory by batch size.

Each (form, batch) row runs in its own subprocess so its peak RSS is its own. Every row is compiled first
and XLA's memory analysis (arguments + outputs + temporaries) decides whether it fits ``--budget-gib``
(the machine's memory). A row is run only if it also stays under ``--run-cap-gib`` (the machine is
shared) and its estimated time (from the previous timed row of its form, cost ~ B^2) is under
``--max-seconds`` for all repeats; the blockwise rows in ``--single-run`` are run once regardless of time.

    python -m benchmarks.contrastive_loss                       # 4k..256k, D=512
    python -m benchmarks.contrastive_loss --batches 4096,8192   # a quick subset
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

GIB = 2**30


def _child(form: str, batch: int, dim: int, block: int, repeats: int, budget: float, run_cap: float, run: bool) -> dict:
    import jax
    import jax.numpy as jnp

    from embeddings_jax.ops import losses, similarity

    kx, ky = jax.random.split(jax.random.key(0))
    shape = jax.ShapeDtypeStruct((batch, dim), jnp.float32)
    block_size = block if form == "blockwise" else None

    def step(x, y, scale):
        return jax.value_and_grad(lambda x, y, s: losses.clip_loss(x, y, scale=s, block_size=block_size), argnums=(0, 1, 2))(
            x, y, scale
        )

    fn = jax.jit(step)
    t0 = time.perf_counter()
    compiled = fn.lower(shape, shape, jax.ShapeDtypeStruct((), jnp.float32)).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    xla_bytes = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
    row = {"form": form, "batch": batch, "dim": dim, "block": block_size, "compile_s": compile_s,
           "xla_peak_bytes": xla_bytes, "fits": xla_bytes <= budget}
    if not row["fits"] or not run or xla_bytes > run_cap:
        return row
    x = jax.random.normal(kx, (batch, dim), jnp.float32)
    y = jax.random.normal(ky, (batch, dim), jnp.float32)
    x, y = similarity.l2_normalize(x), similarity.l2_normalize(y)
    scale = jnp.float32(14.3)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(x, y, scale))
        times.append(time.perf_counter() - t0)
    row["times_s"] = times
    row["step_s"] = sorted(times)[len(times) // 2]
    row["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return row


def _run_row(args, form: str, batch: int, repeats: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.contrastive_loss", "--child", form, str(batch), "--dim", str(args.dim),
           "--block", str(args.block), "--repeats", str(max(repeats, 1)), "--budget-gib", str(args.budget_gib),
           "--run-cap-gib", str(args.run_cap_gib)]
    if not repeats:
        cmd.append("--no-run")
    env = dict(os.environ, XLA_FLAGS=os.environ.get("XLA_FLAGS", ""))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout, check=False)
    if out.returncode:
        return {"form": form, "batch": batch, "error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="4096,8192,16384,32768,65536,131072,262144")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--block", type=int, default=256, help="row tile of the blockwise loss")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per row (median reported)")
    p.add_argument("--budget-gib", type=float, default=24.0, help="machine memory: a row fits if XLA's estimate is below")
    p.add_argument("--run-cap-gib", type=float, default=6.0,
                   help="do not run rows estimated above this (the machine is shared); they are compiled only")
    p.add_argument("--max-seconds", type=float, default=200.0, help="skip timing rows estimated to take longer")
    p.add_argument("--single-run", default="65536", help="blockwise batches run once even when over --max-seconds")
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--child", nargs=2, metavar=("FORM", "BATCH"), help=argparse.SUPPRESS)
    p.add_argument("--no-run", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.single_run = {int(b) for b in args.single_run.split(",") if b}
    if args.child:
        row = _child(args.child[0], int(args.child[1]), args.dim, args.block, args.repeats,
                     args.budget_gib * GIB, args.run_cap_gib * GIB, not args.no_run)
        print(json.dumps(row))
        return

    batches = [int(b) for b in args.batches.split(",")]
    rows, per_flop = [], {}
    for batch in batches:
        for form in ("reference", "blockwise"):
            # estimate time from the last timed row of this form (cost grows as batch^2)
            est = per_flop.get(form, 0.0) * batch**2  # seconds per step, from the last timed row
            once = form == "blockwise" and batch in args.single_run
            repeats = args.repeats if est * args.repeats <= args.max_seconds else (1 if once else 0)
            row = _run_row(args, form, batch, repeats)
            if row.get("fits") and "step_s" not in row:
                row["estimated_step_s"] = est
                row["skipped"] = (
                    f"XLA estimate above --run-cap-gib {args.run_cap_gib}"
                    if row["xla_peak_bytes"] > args.run_cap_gib * GIB
                    else f"estimated {est:.0f} s per step, above --max-seconds {args.max_seconds}"
                )
            if "step_s" in row:
                per_flop[form] = row["step_s"] / batch**2
            rows.append(row)
            print(_fmt(row), flush=True)

    metrics = {}
    for r in rows:
        key = f"clip_fwd_bwd_{r['form']}_b{r['batch']}"
        if "error" in r:
            metrics[f"{key}_error"] = r["error"][-300:]
            continue
        metrics[f"{key}_xla_peak_gib"] = r["xla_peak_bytes"] / GIB
        metrics[f"{key}_xla_peak_kib_per_sample"] = r["xla_peak_bytes"] / 1024 / r["batch"]
        metrics[f"{key}_fits_budget"] = r["fits"]
        if "skipped" in r:
            metrics[f"{key}_not_run"] = r["skipped"]
        if "times_s" in r:
            metrics[f"{key}_timed_runs"] = len(r["times_s"])
        if "step_s" in r:
            metrics[f"{key}_step_s"] = r["step_s"]
            metrics[f"{key}_peak_rss_gib"] = r["peak_rss_bytes"] / GIB
            metrics[f"{key}_peak_rss_kib_per_sample"] = r["peak_rss_bytes"] / 1024 / r["batch"]
    for b in batches:
        ref, blk = (metrics.get(f"clip_fwd_bwd_{f}_b{b}_step_s") for f in ("reference", "blockwise"))
        if ref and blk:
            metrics[f"clip_fwd_bwd_b{b}_blockwise_speedup_vs_reference"] = ref / blk
    for form in ("reference", "blockwise"):
        fit = [r["batch"] for r in rows if r.get("form") == form and r.get("fits")]
        metrics[f"largest_batch_fitting_{form}"] = max(fit) if fit else 0
    from benchmarks.common import write_result

    path = write_result(
        "contrastive_loss",
        config={"loss": "clip_loss (symmetric InfoNCE)", "dim": args.dim, "block": args.block, "dtype": "float32",
                "repeats": args.repeats, "memory_budget_gib": args.budget_gib, "run_cap_gib": args.run_cap_gib,
                "batches": batches,
                "max_seconds": args.max_seconds, "single_run": sorted(args.single_run)},
        metrics=metrics,
        peers={"reference": "clip_loss with block_size=None: XLA over the full [B, B] logits"},
        command="python -m benchmarks.contrastive_loss " + " ".join(sys.argv[1:]),
    )
    print(f"wrote {path}")


def _fmt(r: dict) -> str:
    if "error" in r:
        return f"{r['form']:>9} B={r['batch']:>7}  ERROR {r['error'][-200:]}"
    s = (f"{r['form']:>9} B={r['batch']:>7}  XLA peak {r['xla_peak_bytes'] / GIB:7.2f} GiB "
         f"({r['xla_peak_bytes'] / 1024 / r['batch']:7.1f} KiB/sample)")
    if not r["fits"]:
        return s + "  does not fit the budget: not run"
    if "step_s" in r:
        return s + (f"  step {r['step_s']:8.2f} s  peak RSS {r['peak_rss_bytes'] / GIB:6.2f} GiB "
                    f"({r['peak_rss_bytes'] / 1024 / r['batch']:6.1f} KiB/sample)")
    return s + f"  fits; not run ({r.get('skipped', '')})"


if __name__ == "__main__":
    main()
