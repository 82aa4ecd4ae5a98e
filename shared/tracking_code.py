"""Tracking codes ("codes de suivi"): bearer secrets a citizen can read aloud and type.

16 symbols of Crockford's base32 (80 bits from the OS's CSPRNG) and a Luhn mod 32 check symbol, shown in
groups of four: `K7QM-2XPD-9RTA-HF3W-Z`. The check symbol catches every single mistyped symbol and most
swapped neighbours, so a typo is told apart from an unknown code without a database lookup.
Typing is forgiving: any case, dashes and spaces optional, O read as 0, I and L read as 1.
"""

from __future__ import annotations

import hashlib
import secrets

from stdnum import luhn

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DATA_LENGTH = 16
LENGTH = DATA_LENGTH + 1
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_IGNORED = str.maketrans("", "", " -\u2010\u2011\u2012\u2013\u2212\t")


class MalformedCode(ValueError):
    """Not shaped like a tracking code at all (wrong length or characters)."""


class MistypedCode(ValueError):
    """Shaped like a tracking code, but its check symbol does not match: almost surely a typo."""


def generate() -> str:
    bits = int.from_bytes(secrets.token_bytes(DATA_LENGTH * 5 // 8))  # 5 bits a symbol, one read of the OS
    data = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(DATA_LENGTH))
    return display(data + luhn.calc_check_digit(data, alphabet=ALPHABET))


def display(normalized: str) -> str:
    return "-".join(normalized[i : i + 4] for i in range(0, len(normalized), 4))


def normalize(typed: str) -> str:
    """The canonical form of what a person typed (17 symbols, no dashes), or an error saying why not."""
    code = typed.translate(_IGNORED).upper().translate(_READ_AS)
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        raise MalformedCode(typed)
    if luhn.checksum(code, alphabet=ALPHABET) != 0:
        raise MistypedCode(typed)
    return code


def digest(code: str) -> str:
    """The code's sha256, the only form of it that leaves intake."""
    return digest_of_normalized(normalize(code))


def digest_of_normalized(normalized: str) -> str:
    """`digest` of a code `normalize` answered already."""
    return hashlib.sha256(normalized.encode()).hexdigest()
