"""Input that could poison the store or a serializer is refused where a transport decodes it.

A string holding NUL cannot be stored by PostgreSQL; one holding a lone surrogate cannot
be encoded as UTF-8, so every later read of it would fail; nesting past `MAX_DEPTH` breaks
serializers and recursion; an object key past `MAX_KEY_LENGTH` overflows an index row (label
keys). Each is answered 400, naming the field, before anything is stored.
"""

from __future__ import annotations

import re
from typing import Any

#: Deepest nesting of objects and arrays accepted in any input.
MAX_DEPTH = 64
#: Longest object key (characters) accepted in any input.
MAX_KEY_LENGTH = 256

_LONG_RUN = re.compile(b'[^"]{%d}' % (MAX_KEY_LENGTH + 1))


def string_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if text.isascii():
        return "contains a NUL character" if "\x00" in text else None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return "contains a NUL character" if "\x00" in text else None


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def input_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """(field, reason) of the first part of `value` that cannot be accepted, or None.

    Iterative, so a hostile depth cannot exhaust the interpreter's stack while it is judged.
    """
    pending: list[tuple[Any, str, int]] = [(value, path, 0)]
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, str):
            problem = string_problem(item)
            if problem is not None:
                return where, problem
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                return where, f"is nested deeper than {MAX_DEPTH} levels"
            if isinstance(item, dict):
                for key, child in item.items():
                    key_text = str(key)
                    if len(key_text) > MAX_KEY_LENGTH:
                        return where, f"has a key longer than {MAX_KEY_LENGTH} characters"
                    problem = string_problem(key_text)
                    if problem is not None:
                        return where, f"has a key that {problem}"
                    pending.append((child, _join(where, key_text), depth + 1))
            else:
                pending.extend((child, _join(where, i), depth + 1) for i, child in enumerate(item))
    return None


def json_input_problem(raw: bytes, value: Any) -> tuple[str, str] | None:
    """`input_problem(value)` for a `value` that `json.loads(raw)` returned, answered from `raw`
    alone (C-speed scans, no walk) when `raw` rules every problem out:

    - ASCII without a NUL byte (so `json.loads` read it as UTF-8, one character per byte: not
      UTF-16 or UTF-32, whose bytes may be ASCII too) and without a backslash: no escape
      anywhere, so no string holds a NUL (a raw control character is refused by the parser)
      or a lone surrogate, and each string is exactly the bytes between two quotes;
    - at most MAX_DEPTH `[` and `{` in all: nothing is nested MAX_DEPTH deep;
    - no run of more than MAX_KEY_LENGTH bytes without a quote: no key that long.

    Anything else (most often a body with an escape in it) is walked by `input_problem`."""
    if (
        raw.isascii()
        and b"\x00" not in raw
        and b"\\" not in raw
        and raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH
        and (len(raw) <= MAX_KEY_LENGTH or _LONG_RUN.search(raw) is None)
    ):
        return None
    return input_problem(value)
