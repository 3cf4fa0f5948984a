"""``embeddings-jax <experiment> [--config ARG] [--config.key=value ...] [--workdir DIR]``.

Thin on purpose: it finds the experiment module, builds its config and calls ``run``.
"""

from __future__ import annotations

import ast
import importlib
import json
import pathlib
import pkgutil
import sys

import experiments
from embeddings_jax.config import apply_overrides

USAGE = __doc__.splitlines()[0].rstrip(".").strip("`")


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


def parse_args(argv: list[str]) -> tuple[str, str | None, list[str], str | None]:
    if not argv:
        raise SystemExit(_listing())
    name, rest = argv[0], argv[1:]
    config_arg, overrides, workdir = None, [], None
    i = 0
    while i < len(rest):
        arg = rest[i]
        key, eq, value = arg.partition("=")
        takes_value = key in ("--config", "--workdir")
        if takes_value and not eq:
            if i + 1 >= len(rest):
                raise SystemExit(f"{key} needs a value\n{USAGE}")
            value, i = rest[i + 1], i + 1
        if key == "--config":
            config_arg = value
        elif key == "--workdir":
            workdir = value
        elif key.startswith("--config."):
            if not eq:
                raise SystemExit(f"{arg}: overrides are written --config.key=value")
            overrides.append(f"{key[len('--config.'):]}={value}")
        else:
            raise SystemExit(f"unknown argument {arg!r}\n{USAGE}")
        i += 1
    return name, config_arg, overrides, workdir


def _listing() -> str:
    lines = [f"usage: {USAGE}", "", "experiments:"]
    lines += [f"  {n:<12} {d}" for n, d in available_experiments().items()]
    lines += ["", "--config runlocal runs any experiment in seconds on a CPU."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help", "help", "list"):
        print(_listing())
        return 0
    name, config_arg, overrides, workdir = parse_args(argv)
    known = available_experiments()
    if name not in known:
        raise SystemExit(f"unknown experiment {name!r}\n\n{_listing()}")
    module = importlib.import_module(f"experiments.{name}")
    try:
        config = apply_overrides(module.get_config(config_arg), overrides)
    except ValueError as e:
        raise SystemExit(f"config error: {e}") from e
    workdir = workdir or str(pathlib.Path("workdir") / name)
    pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
    (pathlib.Path(workdir) / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
    result = module.run(config, workdir)
    if result:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
