"""``embeddings-jax <experiment> [--config ARG | --config=path/to/config.py:ARG] [--config.key=value ...] [--workdir DIR] [--overwrite]``.

Thin on purpose: it finds the experiment module, builds its config with ``ml_collections.config_flags``
(typed overrides, ``--help`` listing every key) and calls ``run(config, workdir)``. It is the top floor:
the only library module that imports ``experiments``. A workdir keeps one run: re-running it with
another config is refused (the run would resume from, or overwrite, the other config's files)
unless ``--overwrite`` moves the old run aside first.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import pathlib
import pkgutil
import sys
import time

import ml_collections
from absl import flags
from ml_collections import config_flags

import experiments
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


def available_experiments() -> dict[str, str]:
    """Experiment name -> first line of its module docstring.

    Read from the source without importing it, so listing stays fast and one experiment's
    optional dependencies never break another.
    """
    found = {}
    for info in pkgutil.iter_modules(experiments.__path__):
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
    lines += ["", "--config runlocal runs any experiment in seconds on a CPU;",
              "embeddings-jax <experiment> --help lists its config keys and defaults."]
    return "\n".join(lines)


def _config_argv(name: str, argv: list[str]) -> tuple[list[str], str | None, bool]:
    """Rewrites the experiment's own arguments for ``config_flags``.

    ``--config ARG`` (a config switch such as ``runlocal``) becomes ``--config=<experiment file>:ARG``;
    a value naming a ``.py`` file is kept, so any config file works. The config flag goes first (as
    ``config_flags`` requires); returns ``(argv, workdir, flags)`` with the set of bare flags given
    (``help``, ``overwrite``).
    """
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
        elif key in ("--config", "--workdir"):
            if not eq:
                if i + 1 >= len(argv):
                    raise SystemExit(f"{key} needs a value\nusage: {USAGE}")
                value, i = argv[i + 1], i + 1
            if key == "--config":
                config_value = value
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


def config_help(name: str, config: ml_collections.ConfigDict) -> str:
    """``--help`` text: usage and every config key with its default."""
    keys = _flatten(config)
    width = max(map(len, keys), default=0)
    lines = [f"usage: embeddings-jax {name} [--config ARG] [--config.key=value ...] [--workdir DIR]",
             "", available_experiments().get(name, ""), "",
             "config keys (defaults for this --config; override with --config.key=value):"]
    lines += [f"  {k:<{width}}  {v!r}" for k, v in keys.items()]
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help", "list"):
        print(_listing())
        return 0 if argv else 2
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
    module = importlib.import_module(f"experiments.{name}")
    workdir = pathlib.Path(workdir or pathlib.Path("workdir") / name)
    claim_workdir(workdir, config, "overwrite" in switches)
    result = module.run(config, str(workdir))
    if result:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
