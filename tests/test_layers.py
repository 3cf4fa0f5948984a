"""Imports run one way, down the floors of README.md's architecture section.

Every module of the package, the experiments and the benchmarks is parsed, lazy imports inside
functions included; notebooks may use only an experiment's ``get_config`` and ``run``.
"""

import ast
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Floor of each package prefix (longest prefix wins); a module may import its own floor and below.
FLOORS = {
    "embeddings_jax.ops": 0,
    "embeddings_jax.config": 1,
    "embeddings_jax.data": 1,
    "embeddings_jax.train": 1,
    "embeddings_jax.index": 2,
    "embeddings_jax.eval": 2,
    "embeddings_jax.decoding": 2,
    "embeddings_jax.vectors": 3,
    "embeddings_jax.models": 4,
    "benchmarks": 5,
    "experiments": 6,
    "embeddings_jax.cli": 7,
}
EXPERIMENT_API = {"get_config", "run"}


def floor(module: str) -> int | None:
    if module == "embeddings_jax":
        return 0  # the package's __init__ imports nothing
    best = max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len, default=None)
    return None if best is None else FLOORS[best]


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, here: str, is_package: bool):
    """``(line, module)`` for every import in ``tree`` (any depth), relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = here.split(".")[: len(here.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(package + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:  # `from pkg import module` imports pkg.module
                yield node.lineno, f"{base}.{alias.name}"


def project_modules():
    for top in ("embeddings_jax", "experiments", "benchmarks"):
        yield from sorted((ROOT / top).rglob("*.py"))


def test_every_import_runs_down_the_floors():
    bad = []
    for path in project_modules():
        here = module_name(path)
        mine = floor(here)
        assert mine is not None, f"{here} has no floor in FLOORS: add it (and to README's layout)"
        tree = ast.parse(path.read_text())
        for line, target in imported_modules(tree, here, path.name == "__init__.py"):
            theirs = floor(target)
            if theirs is None:
                continue  # third-party or standard library
            if theirs > mine:  # benchmarks (5) sit below experiments (6), so never import them
                bad.append(f"{path.relative_to(ROOT)}:{line} ({here}, floor {mine}) imports {target} (floor {theirs})")
    assert not bad, "imports running up a floor:\n" + "\n".join(bad)


def test_floor_lookup():
    assert floor("embeddings_jax.ops.kmeans") == 0 and floor("embeddings_jax.models.bert.encoder") == 4
    assert floor("embeddings_jax.cli") == 7 and floor("numpy") is None
    assert floor("embeddings_jax.datasets") is None  # a prefix must end at a dot


def _notebook_uses_of_experiments(path: pathlib.Path):
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    # IPython magics and shell lines are not Python: keep their indentation, drop their text
    code = "\n".join(line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
                     else line for line in code.splitlines())
    tree = ast.parse(code)
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("experiments"):
            for alias in node.names:
                if node.module == "experiments":
                    aliases[alias.asname or alias.name] = alias.name
                elif alias.name not in EXPERIMENT_API:
                    yield f"from {node.module} import {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("experiments"):
                    aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr not in EXPERIMENT_API):
            yield f"{node.value.id}.{node.attr}"


@pytest.mark.parametrize("path", sorted((ROOT / "colab").glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_use_only_get_config_and_run_from_experiments(path):
    assert not list(_notebook_uses_of_experiments(path))


def test_no_experiment_module_over_300_lines():
    long = {p.name: n for p in (ROOT / "experiments").rglob("*.py") if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long


def test_train_package_exports_resolve_lazily():
    from embeddings_jax import train

    assert sorted(train.__all__) == sorted(train._EXPORTS)
    for name in train.__all__:
        assert getattr(train, name) is not None
