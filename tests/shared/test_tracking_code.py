"""Tracking codes: 80 random bits, readable groups, and a check symbol that catches typos."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import tracking_code as tc

codes = st.builds(lambda _: tc.generate(), st.integers())


def test_a_code_carries_at_least_80_bits_in_readable_groups() -> None:
    code = tc.generate()
    groups = code.split("-")
    assert [len(g) for g in groups] == [4, 4, 4, 4, 1]
    assert tc.DATA_LENGTH * math.log2(len(tc.ALPHABET)) >= 80
    assert not set(code.replace("-", "")) & set("ILOU")


def test_codes_do_not_repeat() -> None:
    assert len({tc.generate() for _ in range(5000)}) == 5000


@given(codes)
def test_typing_is_forgiving_about_case_dashes_and_spaces(code: str) -> None:
    typed = " ".join(code.lower().replace("-", "")) + " "
    assert tc.normalize(typed) == code.replace("-", "")
    assert tc.digest(typed) == tc.digest(code)


@given(codes)
def test_o_and_i_and_l_are_read_as_digits(code: str) -> None:
    plain = code.replace("-", "")
    assert tc.normalize(plain.replace("0", "O").replace("1", "I")) == plain
    assert tc.normalize(plain.replace("1", "l")) == plain


@given(codes, st.data())
def test_any_single_wrong_symbol_is_caught_as_a_typo(code: str, data: st.DataObject) -> None:
    plain = code.replace("-", "")
    position = data.draw(st.integers(0, len(plain) - 1))
    other = data.draw(st.sampled_from([c for c in tc.ALPHABET if c != plain[position]]))
    with pytest.raises(tc.MistypedCode):
        tc.normalize(plain[:position] + other + plain[position + 1 :])


def test_almost_every_swap_of_neighbours_is_caught_as_a_typo() -> None:
    swaps = missed = 0
    for _ in range(500):
        plain = tc.generate().replace("-", "")
        for i in range(len(plain) - 1):
            swapped = plain[:i] + plain[i + 1] + plain[i] + plain[i + 2 :]
            if swapped == plain:
                continue
            swaps += 1
            try:
                tc.normalize(swapped)
                missed += 1
            except tc.MistypedCode:
                pass
    # Luhn mod 32 misses only the swap of the two symbols whose doubled values wrap to each other.
    assert missed / swaps < 0.01


@pytest.mark.parametrize(
    "typed", ["", "ABCD", "ABCD-EFGH-JKLM-NPQR-ST", "ABCD-EFGH-JKLM-NPQR-!", "ÀBCD-EFGH-JKLM-NPQR-S"]
)
def test_text_not_shaped_like_a_code_is_malformed(typed: str) -> None:
    with pytest.raises(tc.MalformedCode):
        tc.normalize(typed)
