"""Counted words take the language's plural form: French counts 0 as singular, English does not, and
Arabic has a dual, a form for 3 to 10 and one for 11 to 99."""

from __future__ import annotations

import pytest

from shared.pages import Texts


@pytest.mark.parametrize(
    ("lang", "months", "days", "words"),
    [
        ("fr", 0, 0, "0 jour"),
        ("fr", 2, 0, "2 mois"),
        ("en", 0, 0, "0 days"),
        ("en", 1, 1, "1 month and 1 day"),
        ("ar", 1, 0, "شهر واحد"),
        ("ar", 2, 0, "شهران"),
        ("ar", 3, 0, "3 أشهر"),
        ("ar", 0, 11, "11 يومًا"),
        ("ar", 0, 100, "100 يوم"),
    ],
)
def test_a_duration_reads_as_the_language_counts(lang: str, months: int, days: int, words: str) -> None:
    assert Texts(lang).duration(months=months, days=days) == words


def test_a_form_the_language_file_lacks_falls_back_to_other() -> None:
    # English has no "few": 3 is "other", never a missing text.
    assert Texts("en").plural("page.result.days_left", 3) == Texts("en")("page.result.days_left.other", n=3)
