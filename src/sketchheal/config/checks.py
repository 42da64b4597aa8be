"""Shared pieces of config validation: the allowed values of string fields and the numeric field kinds."""

from __future__ import annotations

import math
import numbers
from typing import Any

# The 17 QuickDraw categories of the paper (order as in the published HParams).
PAPER_CATEGORIES: tuple[str, ...] = (
    "airplane", "angel", "alarm clock", "apple", "butterfly", "belt", "bus", "cake", "cat", "clock",
    "eye", "fish", "pig", "sheep", "spider", "The Great Wall of China", "umbrella",
)

# Choices of the string-valued fields (checked by the validate() methods below).
RENDER_MODES = ("reference", "fast")      # sketchheal.sketch.render modes
ENCODERS = ("gmlp", "cnn")                # model.encoder
GMLP_RESIDUALS = ("paper", "reference")   # model.gmlp_residual
INIT_PARTS = ("all", "encoder", "decoder")  # train.init_parts
BF16_MODES = ("auto", "on", "off")        # train.bf16


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _whole(x: Any, low: int = 0) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= low


def _integer(x: Any, low: int = 0) -> bool:
    """Like ``_whole``, also for numpy integers (what array code hands over)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= low


# Kinds of numeric field for _check_fields: (test, what the message says the value must be).
_KINDS = {
    "int>=0": (lambda v: _whole(v, 0), "an integer >= 0"),
    "int>=1": (lambda v: _whole(v, 1), "an integer >= 1"),
    ">0": (lambda v: _finite(v) and v > 0, "a positive number"),
    ">=0": (lambda v: _finite(v) and v >= 0, "a number >= 0"),
    "[0,1]": (lambda v: _finite(v) and 0 <= v <= 1, "in [0, 1]"),
    "[0,1)": (lambda v: _finite(v) and 0 <= v < 1, "in [0, 1)"),
    "(0,1]": (lambda v: _finite(v) and 0 < v <= 1, "in (0, 1]"),
}


def _check_fields(section: str, obj: Any, rules: dict[str, str | tuple[str, ...]]) -> None:
    """``ValueError`` naming ``section.field`` for the first field that breaks its rule: a ``_KINDS`` key, or a
    tuple of the allowed values."""
    for name, rule in rules.items():
        value = getattr(obj, name)
        ok, what = ((value in rule, f"one of {rule}") if isinstance(rule, tuple)
                    else (_KINDS[rule][0](value), _KINDS[rule][1]))
        _check(ok, f"{section}.{name} must be {what}, got {value!r}")
