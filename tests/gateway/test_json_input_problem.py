"""`json_input_problem` (the REST body's hostile-input check, answered from the raw bytes when
they rule every problem out) always agrees with the full walk, `input_problem`."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from runtime.gateway.input_limits import MAX_DEPTH, MAX_KEY_LENGTH, input_problem, json_input_problem

HOSTILE = [
    {"payload": {"data": "a\u0000b"}},
    {"payload": {"data": "\ud800"}},
    {"labels": {"k\u0000": "v"}},
    {"k" * (MAX_KEY_LENGTH + 1): 1},
    {'"' * (MAX_KEY_LENGTH + 1): 1},  # a long key of escaped quotes
    {"\u2222" * (MAX_KEY_LENGTH + 1): 1},  # its UTF-16 bytes are all ASCII quotes
]


def _nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def _encodings(value: Any) -> list[bytes]:
    texts = [json.dumps(value), json.dumps(value, ensure_ascii=False)]
    found = []
    for text in texts:
        for codec in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-16"):
            try:
                found.append(text.encode(codec, "surrogatepass"))
            except UnicodeEncodeError:
                continue
    return found


@pytest.mark.parametrize("value", [*HOSTILE, _nested(MAX_DEPTH + 1)])
def test_every_hostile_body_is_found_in_every_encoding(value: Any) -> None:
    for raw in _encodings(value):
        parsed = json.loads(raw)
        assert json_input_problem(raw, parsed) == input_problem(parsed) is not None


def test_the_deepest_and_longest_accepted_bodies_stay_accepted() -> None:
    for value in (_nested(MAX_DEPTH), {"k" * MAX_KEY_LENGTH: "v" * 1000}):
        for raw in _encodings(value):
            assert json_input_problem(raw, json.loads(raw)) is None


def test_a_plain_small_body_is_answered_without_a_walk() -> None:
    raw = b'{"type": "stateless", "payload": {"function": "noop", "data": [1, 2, {"n": 3}]}}'
    assert json_input_problem(raw, None) is None  # None as the value: it was never looked at
    # A run of more bytes than a key may have, without a quote: walked (here a stand-in value).
    long_value = b'{"k": "' + b"x" * (MAX_KEY_LENGTH + 1) + b'"}'
    assert json_input_problem(long_value, {"k": "\u0000"}) == ("k", "contains a NUL character")


ALPHABET = ["a", "Z", "0", " ", '"', "\\", "\u0000", "\ud800", "\u00e9", "\u2222", "\u5c41", "{", "["]


def _random_text(rng: random.Random) -> str:
    length = rng.choice([0, 1, 5, MAX_KEY_LENGTH - 1, MAX_KEY_LENGTH, MAX_KEY_LENGTH + 1, 300])
    common = rng.random() < 0.7
    return "".join("a" if common and rng.random() < 0.95 else rng.choice(ALPHABET) for _ in range(length))


def _random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.random()
    if depth > 70 or kind < 0.3:
        return rng.choice([1, 2.5, True, None, _random_text(rng)])
    if kind < 0.5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 2))]
    if kind < 0.55:  # a deep chain
        return _nested(rng.choice([MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1]))
    return {_random_text(rng): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


@pytest.mark.parametrize("seed", range(4))
def test_random_bodies_in_every_encoding_get_the_walks_answer(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        value = _random_value(rng, 0)
        for raw in _encodings(value):
            parsed = json.loads(raw)
            assert json_input_problem(raw, parsed) == input_problem(parsed)
