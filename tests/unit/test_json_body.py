"""The strict JSON body reader (evreplay.http.plumbing): its nesting check agrees with the real depth."""

from __future__ import annotations

import json
from typing import Any

from evreplay.http.plumbing import nests_deeper_than
from hypothesis import given
from hypothesis import strategies as st

# Strings full of what the check must not count: brackets, quotes and backslashes.
tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\\\ a,:é\U0001f600')), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | tricky_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(item) for item in value.values()), default=0)
    return 0


@given(json_values, st.booleans())
def test_nesting_check_agrees_with_the_real_depth(value, ascii_only):
    data = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    real = depth(value)

    assert not nests_deeper_than(data, real)
    if real > 0:
        assert nests_deeper_than(data, real - 1)


def test_ten_thousand_levels_are_too_deep_and_brackets_in_strings_do_not_count():
    assert nests_deeper_than(b"[" * 10_000 + b"]" * 10_000, 64)
    assert not nests_deeper_than(json.dumps({"s": "[" * 10_000, "t": '\\"{' * 100}).encode(), 1)
