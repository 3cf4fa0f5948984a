"""``embeddings-jax <experiment> [--config ARG | --config=path/to/config.py:ARG] [--config.key=value ...] [--workdir DIR] [--overwrite] [--coordinator HOST:PORT --num-processes N --process-id I | --distributed]``.

Thin on purpose: it finds the experiment module, builds its config with ``ml_collections.config_flags``
(typed overrides; ``--help`` lists every key with its default and the comment beside it in
``get_config``), starts ``jax.distributed`` when asked, calls ``run(config, workdir)`` and ends with a
short table of the run's numbers and the files it wrote. It is the top floor: the only library module
that imports ``experiments``, which lives in the source checkout beside the package (it writes its
results there) and is not installed into site-packages. A workdir keeps one run: re-running it with
another config is refused (the run would resume from, or overwrite, the other config's files)
unless ``--overwrite`` moves the old run aside first.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import inspect
import io
import json
import os
import pathlib
import pkgutil
import sys
import time
import tokenize

import ml_collections
from absl import flags
from ml_collections import config_flags

from embeddings_jax.config import KEY_MEANINGS
from embeddings_jax.train.atomic import atomic_write

USAGE = __doc__.splitlines()[0].rstrip(".").strip("`")


class _ListParser(flags.ArgumentParser):
    """``--config.key=[a, b]`` (or ``a,b``) for list-valued keys, which config_flags has no parser for."""

    def parse(self, argument):
        if isinstance(argument, (list, tuple)):
            return list(argument)
        try:
            value = ast.literal_eval(argument)
        except (ValueError, SyntaxError):  # bare words: [softmax, bpr]
            value = [v.strip() for v in argument.strip().strip("[]").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list such as [1, 2], got {argument!r}")
        return list(value)

    def flag_type(self):
        return "list"


config_flags.register_flag_parser_for_type(list, _ListParser())


CHECKOUT = pathlib.Path(__file__).resolve().parents[1]


def _experiments():
    """The checkout's ``experiments`` package, its root put first on ``sys.path`` (so a foreign
    top-level ``experiments`` never shadows it, and ``benchmarks`` imports too)."""
    if not (CHECKOUT / "experiments" / "__init__.py").exists():
        urls = importlib.metadata.metadata("embeddings-jax").get_all("Project-URL") or []
        repo = next((u.split(",", 1)[1].strip() for u in urls if u.startswith("Repository")), "<repository>")
        raise SystemExit("the experiments live in the source checkout, which this install lacks:\n"
                         f"  git clone {repo} && cd {repo.rstrip('/').rsplit('/', 1)[-1]} && "
                         "pip install -e \".[experiments]\"")
    if str(CHECKOUT) not in sys.path:
        sys.path.insert(0, str(CHECKOUT))
    return importlib.import_module("experiments")


def available_experiments() -> dict[str, str]:
    """Experiment name -> first line of its module docstring.

    Read from the source without importing it, so listing stays fast and one experiment's
    optional dependencies never break another.
    """
    found = {}
    for info in pkgutil.iter_modules(_experiments().__path__):
        path = pathlib.Path(info.module_finder.path) / f"{info.name}.py"
        if info.name.startswith("_") or not path.exists():
            continue
        tree = ast.parse(path.read_text())
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if {"get_config", "run"} <= functions:
            found[info.name] = (ast.get_docstring(tree) or "").strip().splitlines()[0:1]
    return {name: (doc[0] if doc else "") for name, doc in sorted(found.items())}


def _listing() -> str:
    lines = [f"usage: {USAGE}", "", "experiments:"]
    lines += [f"  {n:<12} {d}" for n, d in available_experiments().items()]
    lines += ["", "commands:", f"  {'translate':<12} a trained seq2seq run translates and scores a file (--help)"]
    lines += ["", "--config runlocal runs any experiment in seconds on a CPU;",
              "embeddings-jax <experiment> --help lists its config keys and defaults."]
    return "\n".join(lines)


DISTRIBUTED = ("--coordinator", "--num-processes", "--process-id")  # jax.distributed.initialize's


def _config_argv(name: str, argv: list[str]) -> tuple[list[str], str | None, set]:
    """Rewrites the experiment's own arguments for ``config_flags``.

    ``--config ARG`` (a config switch such as ``runlocal``) becomes ``--config=<experiment file>:ARG``;
    a value naming a ``.py`` file is kept, so any config file works. The config flag goes first (as
    ``config_flags`` requires); returns ``(argv, workdir, flags)`` with the set of bare flags given
    (``help``, ``overwrite``, ``distributed``) and ``(flag, value)`` for the `DISTRIBUTED` ones.
    """
    _experiments()
    source = importlib.util.find_spec(f"experiments.{name}").origin
    config_value, workdir, switches, rest = None, None, set(), []
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, value = arg.partition("=")
        if key in ("-h", "--help", "--helpfull"):
            switches.add("help")
        elif key == "--overwrite":
            switches.add("overwrite")
        elif key == "--distributed":
            switches.add("distributed")
        elif key in ("--config", "--workdir", *DISTRIBUTED):
            if not eq:
                if i + 1 >= len(argv):
                    raise SystemExit(f"{key} needs a value\nusage: {USAGE}")
                value, i = argv[i + 1], i + 1
            if key == "--config":
                config_value = value
            elif key in DISTRIBUTED:
                switches.add((key, value))
            elif not value.strip():
                raise SystemExit("--workdir is empty: give a directory, or leave the flag out for "
                                 f"workdir/{name}")
            else:
                workdir = value
        elif key.startswith(("--config.", "--noconfig.")):
            rest.append(arg)
            if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                rest.append(argv[i + 1])
                i += 1
        else:
            raise SystemExit(f"unknown argument {arg!r}\nusage: {USAGE}")
        i += 1
    if config_value is None:
        config_value = source
    elif not config_value.partition(":")[0].endswith(".py"):
        config_value = f"{source}:{config_value}"
    return [f"--config={config_value}", *rest], workdir, switches


def _flatten(config, prefix: str = "") -> dict[str, object]:
    """A nested config (``ConfigDict``, or its JSON dict) as ``{"a.b": leaf}``."""
    out = {}
    for key, value in config.items():
        if isinstance(value, (ml_collections.ConfigDict, dict)):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _parse(name: str, argv: list[str]) -> ml_collections.ConfigDict:
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, f"config of {name}", flag_values=values,
                                    lock_config=True, sys_argv=[f"embeddings-jax {name}", *argv])
    values([f"embeddings-jax {name}", *argv])
    return values.config


def load_config(name: str, argv: list[str]) -> ml_collections.ConfigDict:
    """The experiment's config with ``argv``'s overrides; bad input is a ``ValueError`` naming it."""
    base = _parse(name, argv[:1])  # the config before overrides: its keys check the overrides
    keys = _flatten(base)
    for arg in argv[1:]:
        key = arg.partition("=")[0].lstrip("-").removeprefix("no")
        if key.startswith("config.") and key[len("config."):] not in keys:
            raise ValueError(f"unknown config key {key[len('config.'):]!r}; "
                             f"`embeddings-jax {name} --help` lists the keys")
    try:
        return _parse(name, argv)
    except (flags.Error, TypeError, ValueError) as e:  # absl and config_flags parse errors
        raise ValueError(str(e)) from e


def _commented_assignments(source: str) -> dict[str, str]:
    """``{"a.b": comment}``: the trailing comment of the first ``x.a.b = ...`` (or ``b: type = ...``)
    assignment of each key in ``source``."""
    comments = {t.start[0]: t.string.lstrip("#").strip()
                for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT}
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            key = node.target.id
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, parts = node.targets[0], []
            while isinstance(target, ast.Attribute):
                parts.append(target.attr)
                target = target.value
            if not parts or not isinstance(target, ast.Name):
                continue
            key = ".".join(reversed(parts))
        else:
            continue
        text = next((comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments), "")
        out.setdefault(key, text)  # the first assignment's (the default's), not an override's
    return {k: v for k, v in out.items() if v}


def key_meanings(module, keys) -> dict[str, str]:
    """One line per config key (``keys``) of an experiment module, for ``--help``: the comment on the
    key's assignment in the module, else on the same-named field of a library dataclass the module
    uses (``MFConfig.reg``), else the shared `KEY_MEANINGS` of its last name."""
    own = _commented_assignments(inspect.getsource(module))
    used = [*vars(module).values()]  # and what the packages it imports export
    used += [v for m in used if inspect.ismodule(m) for v in vars(m).values()]
    origins = {o for o in map(inspect.getmodule, used) if o and o.__name__.startswith("embeddings_jax.")}
    fields = {}
    for origin in sorted(origins, key=lambda o: o.__name__):
        for k, v in _commented_assignments(inspect.getsource(origin)).items():
            if "." not in k:
                fields.setdefault(k, v)
    return {k: own.get(k) or fields.get(k.rsplit(".", 1)[-1]) or KEY_MEANINGS.get(k.rsplit(".", 1)[-1], "")
            for k in keys}


def config_help(name: str, config: ml_collections.ConfigDict) -> str:
    """``--help`` text: usage, then every config key with its default and meaning."""
    keys = _flatten(config)
    meanings = key_meanings(importlib.import_module(f"experiments.{name}"), keys)
    defaults = {k: repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..." for k, v in keys.items()}
    kw, dw = max(map(len, keys), default=0), min(max(map(len, defaults.values()), default=0), 24)
    lines = [f"usage: embeddings-jax {name} [--config ARG] [--config.key=value ...] [--workdir DIR] [--overwrite]",
             "", available_experiments().get(name, ""), "",
             "config keys (defaults for this --config; override with --config.key=value):"]
    lines += [f"  {k:<{kw}}  {defaults[k]:<{dw}}  {meanings.get(k, '')}".rstrip() for k in keys]
    return "\n".join(lines)


def claim_workdir(workdir: pathlib.Path, config: ml_collections.ConfigDict, overwrite: bool) -> None:
    """Makes ``workdir`` this config's: refuses one that holds another config's run, or with
    ``overwrite`` moves that run into ``workdir/previous-<time>/`` (nothing is deleted). Under
    ``jax.distributed`` only process 0 moves or writes files."""
    import jax  # here, so that listing experiments stays fast

    if workdir.exists() and not workdir.is_dir():
        raise SystemExit(f"--workdir {workdir} is a file, not a directory")
    saved = workdir / "config.json"
    new = json.loads(config.to_json_best_effort())
    if saved.exists():
        try:
            old = json.loads(saved.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        if old != new:
            if not overwrite:
                before, after = _flatten(old) if isinstance(old, dict) else {}, _flatten(new)
                changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
                raise SystemExit(
                    f"{workdir} holds a run with another config (differing keys: "
                    f"{', '.join(changed[:8]) or 'unreadable config.json'}). Nothing was changed. Use "
                    "another --workdir, or add --overwrite to move the old run into "
                    f"{workdir}/previous-<time>/ and start afresh.")
            if jax.process_index() == 0:
                aside = workdir / f"previous-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9:09d}"
                aside.mkdir()
                for entry in list(workdir.iterdir()):
                    if not entry.name.startswith("previous-"):
                        entry.rename(aside / entry.name)
                print(f"moved the previous run of {workdir} into {aside}", file=sys.stderr)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        if jax.process_index() == 0:
            with atomic_write(saved) as f:
                f.write(json.dumps(new, indent=2) + "\n")
    except OSError as e:
        raise SystemExit(f"cannot write to --workdir {workdir}: {e}") from e


def translate(argv: list[str]) -> int:
    """``embeddings-jax translate --workdir W --src FILE [--ref FILE] [--beam 4] [--out FILE]``:
    a trained seq2seq run translates a file (one sentence a line), scored when references are given."""
    import argparse

    from embeddings_jax.models.seq2seq_scoring import translate_file

    ap = argparse.ArgumentParser(prog="embeddings-jax translate", description=translate.__doc__.split(":")[1].strip())
    ap.add_argument("--workdir", required=True, help="the run's workdir (as given to `embeddings-jax seq2seq`)")
    ap.add_argument("--src", required=True, help="source sentences, one per line (UTF-8, .gz too)")
    ap.add_argument("--ref", help="reference translations, line by line: prints BLEU and chrF")
    ap.add_argument("--beam", type=int, default=4, help="beam size; 0 = greedy (default 4)")
    ap.add_argument("--alpha", type=float, help="length penalty (default: the run's)")
    ap.add_argument("--out", help="write the translations here (default: print them)")
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args(argv)
    try:
        r = translate_file(args.workdir, args.src, args.ref, beam_size=args.beam, alpha=args.alpha,
                           out_path=args.out, batch_size=args.batch_size)
    except (FileNotFoundError, ValueError, TypeError) as e:
        raise SystemExit(f"translate: {e}") from e
    if not args.out:
        print("\n".join(r["hypotheses"]))
    search = f"beam {r['beam_size']}" if r["beam_size"] else "greedy"
    print(f"translated {r['sentences']} sentences ({search}) in {r['seconds']:.1f} s", file=sys.stderr)
    if r["bleu"] is not None:
        case = "lowercased" if r["lowercase"] else "cased"
        print(f"BLEU {r['bleu']:.2f}  chrF {r['chrf']:.2f}  ({case}, detokenised, sacrebleu-equal)", file=sys.stderr)
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help", "list"):
        print(_listing())
        return 0 if argv else 2
    if argv[0] == "translate":
        return translate(argv[1:])
    name, rest = argv[0], argv[1:]
    if name not in available_experiments():
        raise SystemExit(f"unknown experiment {name!r}\n\n{_listing()}")
    config_argv, workdir, switches = _config_argv(name, rest)
    try:
        config = load_config(name, config_argv[:1] if "help" in switches else config_argv)
    except ValueError as e:
        raise SystemExit(f"config error: {e}") from e
    if "help" in switches:
        print(config_help(name, config))
        return 0
    _start_distributed(switches)
    module = importlib.import_module(f"experiments.{name}")
    workdir = pathlib.Path(workdir or pathlib.Path("workdir") / name)
    claim_workdir(workdir, config, "overwrite" in switches)
    watched = [workdir, CHECKOUT / "experiments" / "results"]
    before = _snapshot(watched)
    t0 = time.perf_counter()
    result = module.run(config, str(workdir))
    import jax

    if jax.process_index() == 0:
        if result:
            with atomic_write(workdir / "result.json") as f:
                f.write(json.dumps(result, indent=2, default=str) + "\n")
        print(run_summary(name, result or {}, time.perf_counter() - t0, _written(before, _snapshot(watched)),
                          watched, workdir / "result.json"))
    return 0


def _start_distributed(switches: set) -> None:
    """``jax.distributed.initialize`` from ``--coordinator HOST:PORT --num-processes N --process-id I``
    (all three), or from the cluster's environment (SLURM, Open MPI, TPU pods) with ``--distributed``."""
    given = {s[0]: s[1] for s in switches if isinstance(s, tuple)}
    if not given and "distributed" not in switches:
        return
    import jax

    if given:
        missing = [k for k in DISTRIBUTED if k not in given]
        if missing:
            raise SystemExit(f"a multi-process run needs {', '.join(DISTRIBUTED)}; missing {', '.join(missing)}")
        try:
            n, rank = int(given["--num-processes"]), int(given["--process-id"])
        except ValueError as e:
            raise SystemExit(f"--num-processes and --process-id must be integers: {e}") from e
        jax.distributed.initialize(given["--coordinator"], num_processes=n, process_id=rank)
    else:
        jax.distributed.initialize()


SUMMARY_ROWS = 18


def _snapshot(directories: list[pathlib.Path]) -> dict[pathlib.Path, int]:
    """Every file under ``directories`` -> its mtime in ns; earlier runs moved aside and the temporary
    files of atomic writes left out."""
    return {p: p.stat().st_mtime_ns for d in directories if d.is_dir() for p in d.rglob("*")
            if p.is_file() and ".tmp-" not in p.name
            and not any(part.startswith("previous-") for part in p.relative_to(d).parts)}


def _written(before: dict, after: dict) -> list[pathlib.Path]:
    return sorted(p for p, t in after.items() if before.get(p) != t)


def _shown_path(path: pathlib.Path) -> str:
    try:
        return str(path.resolve().relative_to(pathlib.Path.cwd()))
    except ValueError:
        return str(path)


def _scalars(result: dict, prefix: str = "", depth: int = 2) -> dict[str, float | int]:
    """The numeric leaves of a result down to ``depth`` levels, ``{"a.b": x}``; spreads that are all
    0 (one seed) left out."""
    out = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if depth > 1 and not (key == "std" and not any(_scalars(value).values())):
                out.update(_scalars(value, f"{name}.", depth - 1))
        elif (isinstance(value, (int, float)) and not isinstance(value, bool)
              and not ("_std_" in f"_{key}_" and value == 0)):
            out[name] = value
    return out


def run_summary(name: str, result: dict, seconds: float, written: list[pathlib.Path],
                roots: list[pathlib.Path], result_file: pathlib.Path) -> str:
    """The few lines a run ends with: its headline numbers as a table and the files it wrote
    (under ``roots``, the watched directories; their subdirectories one line each)."""
    rows = _scalars(result)
    common = os.path.commonprefix(list(rows)) if len(rows) > 1 else ""
    common = common[: max(common.rfind("_"), common.rfind(".")) + 1]  # whole words only
    lines = [f"{name} finished in {seconds:.1f} s" + (f"; metrics {common}*:" if common else ":"), ""]
    if rows:
        width = min(max(len(k) - len(common) for k in rows), 60)
        lines += [f"| {'metric':<{width}} | {'value':>12} |", f"|{'-' * (width + 2)}|{'-' * 13}:|"]
        for key, value in list(rows.items())[:SUMMARY_ROWS]:
            text = f"{value:,.0f}" if abs(value) >= 1000 or float(value).is_integer() else f"{value:.4g}"
            lines.append(f"| {key[len(common):]:<{width}} | {text:>12} |")
        if len(rows) > SUMMARY_ROWS:
            lines.append(f"({len(rows) - SUMMARY_ROWS} more in {_shown_path(result_file)})")
        lines.append("")
    lines.append(f"wrote {len(written)} file{'s' * (len(written) > 1)}:" if written else "wrote no files")
    entries: dict[pathlib.Path, int] = {}  # a file, or a subdirectory of a watched one -> files
    for path in written:
        root = next((r for r in roots if path.is_relative_to(r)), path.parent)
        rel = path.relative_to(root).parts
        entries[root / rel[0]] = entries.get(root / rel[0], 0) + 1
    shown = [f"  {_shown_path(e)}" + ("" if e in written else f"/ ({n} file{'s' * (n > 1)})")
             for e, n in entries.items()]
    if len(shown) > 10:
        shown = [*shown[:9], f"  ... and {len(shown) - 9} more"]
    return "\n".join(lines + shown)


if __name__ == "__main__":
    sys.exit(main())
