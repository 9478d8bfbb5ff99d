"""Bounds on one rendering: what `{{ 9**9**9 }}` or `{{ customer.first_name * 10**9 }}` would
cost is refused before it is computed, and no rendering produces more than MAX_OUTPUT
characters or runs longer than MAX_CPU_SECONDS, at preview as at dispatch.

Saved templates cannot name `range` or any other global (engine.templates.problems), so their
loops run over the customer's own data; the bounds below stop what an expression can build."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from numbers import Number
from typing import Any

from jinja2 import filters
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_OUTPUT = 100_000  # characters: an SMS is at most 480, an email body rarely near this
MAX_INT_BITS = 4_096  # a number a template computes (10**1233)
MAX_CPU_SECONDS = 1.0

# A printf or str.format width or precision of six digits or more.
_HUGE_PERCENT = re.compile(r"%[-#0 +]*(\d{6,}|\*|\d*\.(\d{6,}|\*))")
_HUGE_FORMAT = re.compile(r"\{[^{}]*:[^{}]*\d{6,}[^{}]*\}")
_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill", "expandtabs"}


class RenderLimit(SecurityError):
    """A rendering went past a bound."""


def _too_long(size: float) -> None:
    if size > MAX_OUTPUT:
        raise RenderLimit(f"the template builds a text longer than {MAX_OUTPUT:,} characters")


def _too_big(bits: float) -> None:
    if bits > MAX_INT_BITS:
        raise RenderLimit(f"the template builds a number larger than 2**{MAX_INT_BITS}")


def _bits(n: Any) -> float:
    if isinstance(n, bool) or not isinstance(n, Number):
        return 0
    try:
        return math.log2(abs(float(n))) if n else 0  # type: ignore[arg-type]
    except OverflowError:
        return math.inf


def _check_format(fmt: Any) -> None:
    if isinstance(fmt, str) and (_HUGE_PERCENT.search(fmt) or _HUGE_FORMAT.search(fmt)):
        raise RenderLimit("the template formats with a width or precision of 100,000 or more")


def _check_repeat(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            _too_long(len(seq) * times)


def _check_replace(value: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(value, str) and isinstance(old, str) and isinstance(new, str):
        hits = value.count(old) if old else len(value) + 1
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        _too_long(len(value) + hits * (len(new) - len(old)))


class BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox with the operators, methods and filters that can build huge values
    checked before they run (intercepted operators are not folded at compile time either)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {**self.filters, **_bounded_filters(self.filters)}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _bits(left) > 0 and isinstance(right, Number) \
                and not isinstance(right, bool):
            _too_big(_bits(left) * float(right))  # type: ignore[arg-type]
        elif operator == "*":
            _check_repeat(left, right)
            _too_big(_bits(left) + _bits(right))
        elif operator == "+" and isinstance(left, str | list | tuple) \
                and isinstance(right, str | list | tuple):
            _too_long(len(left) + len(right))
        elif operator == "%":
            _check_format(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name in _WIDTH_METHODS:
                _too_long(max([len(owner), *(a for a in args if isinstance(a, int))]))
            elif name in ("format", "format_map"):
                _check_format(owner)
            elif name == "replace" and len(args) >= 2:
                _check_replace(owner, *args[:3])
            elif name == "join" and args:
                _check_join(owner, args[0])
        return super().call(__context, __obj, *args, **kwargs)


def _check_join(sep: str, items: Any) -> None:
    if isinstance(items, list | tuple):
        _too_long(len(sep) * len(items) + sum(len(i) for i in items if isinstance(i, str)))


def _bounded_filters(base: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    def center(value: Any, width: int = 80) -> Any:
        _too_long(width)
        return base["center"](value, width)

    def indent(s: Any, width: Any = 4, *args: Any, **kwargs: Any) -> Any:
        if isinstance(width, int):
            _too_long(width * (str(s).count("\n") + 1) + len(str(s)))
        return base["indent"](s, width, *args, **kwargs)

    def format_(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_format(value)
        return base["format"](value, *args, **kwargs)

    def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
        _check_replace(str(s), str(old), str(new), -1 if count is None else count)
        return base["replace"](eval_ctx, s, old, new, count)

    replace.jinja_pass_arg = filters.do_replace.jinja_pass_arg  # type: ignore[attr-defined]
    return {"center": center, "indent": indent, "format": format_, "replace": replace}


def bounded_concat(chunks: Iterable[str]) -> str:
    """Join a rendering's output, stopping it past MAX_OUTPUT characters or MAX_CPU_SECONDS."""
    out: list[str] = []
    size = 0
    deadline = time.thread_time() + MAX_CPU_SECONDS
    for chunk in chunks:
        size += len(chunk)
        _too_long(size)
        if time.thread_time() > deadline:
            raise RenderLimit(f"the template took more than {MAX_CPU_SECONDS:g} s to render")
        out.append(chunk)
    return "".join(out)
