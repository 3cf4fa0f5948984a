"""Experiment configs are ``get_config(arg)`` functions returning an ``ml_collections.ConfigDict``.

``arg`` is a comma-separated list of switches (``"runlocal,bpe"``) read by ``parse_arg``; the CLI
applies ``--config.key=value`` overrides with ``ml_collections.config_flags``.
"""

from __future__ import annotations

from collections.abc import Iterable


def parse_arg(arg: str | None, allowed: Iterable[str], experiment: str) -> frozenset[str]:
    """The switches of ``get_config(arg)``: ``"runlocal,bpe" -> {"runlocal", "bpe"}``.

    Every experiment reads its config argument through this one parser, so a misspelt switch is
    always the same clear error naming the experiment's switches.
    """
    allowed = frozenset(allowed)
    args = frozenset(a.strip() for a in (arg or "").split(",") if a.strip())
    unknown = args - allowed
    if unknown:
        raise ValueError(
            f"unknown {experiment} config args {sorted(unknown)}; choose from {sorted(allowed)}"
        )
    return args
