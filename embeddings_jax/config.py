"""Experiment configs: ``get_config(arg)`` plus command-line overrides ``--config.key=value``."""

from __future__ import annotations

import ast
from collections.abc import Iterable

import ml_collections


def parse_value(text: str):
    """'3' -> 3, '1e-3' -> 0.001, 'true' -> True, '[1,2]' -> [1, 2], anything else stays a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> ml_collections.ConfigDict:
    """Applies ``key.sub=value`` strings; unknown keys and wrong types are errors naming the key."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key=value")
        *parents, leaf = key.split(".")
        node = config
        for p in parents:
            if p not in node:
                raise ValueError(f"unknown config key {key!r}; top-level keys: {sorted(config.keys())}")
            node = node[p]
        if leaf not in node:
            raise ValueError(f"unknown config key {key!r}; keys here: {sorted(node.keys())}")
        current = node[leaf]
        value = raw if isinstance(current, str) else parse_value(raw)  # "1,2" stays text for str keys
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if current is not None and value is not None and not isinstance(value, type(current)):
            if isinstance(current, (tuple, list)) and isinstance(value, (tuple, list)):
                value = type(current)(value)
            else:
                raise ValueError(
                    f"config key {key!r} expects {type(current).__name__}, got {raw!r}"
                )
        with node.ignore_type():
            node[leaf] = value
    return config
