"""JSON Canonicalization Scheme (RFC 8785): the one text of a JSON value that every
implementation writes — members sorted by their names' UTF-16 code units, no whitespace, strings
escaped as ECMAScript's JSON.stringify does, numbers written as ECMAScript writes an IEEE 754
double (shortest round-trip digits, exponent from 1e21 up and below 1e-6)."""

from __future__ import annotations

import json
import math
from typing import Any


def _utf16_units(name: str) -> bytes:
    return name.encode("utf-16-be")  # big-endian code units compare in code-unit order


def number(value: float | int) -> str:
    """An IEEE 754 double as ECMAScript's Number::toString writes it (RFC 8785 §3.2.2.3)."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError("NaN and Infinity have no JSON form")
    if value == 0:
        return "0"  # also -0
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")  # Python's repr: shortest round-trip digits
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # the point's position in `digits`: value = 0.<digits> × 10^n
    n = len(whole) + int(exponent or 0) - (len(whole + fraction) - len((whole + fraction).lstrip("0")))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = f"0.{'0' * -n}{digits}"
    else:
        e = n - 1
        text = f"{digits[0]}{'.' + digits[1:] if k > 1 else ''}e{'+' if e > 0 else '-'}{abs(e)}"
    return sign + text


def canonical(value: Any) -> str:
    """The RFC 8785 text of a JSON value (dict, list, str, int, float, bool, None)."""
    if value is None or value is True or value is False:
        return json.dumps(value)
    if isinstance(value, str):
        # json.dumps escapes exactly what JSON.stringify escapes (\b \t \n \f \r \" \\, other
        # controls as lowercase \u00xx) and nothing else when ensure_ascii is off
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int) and abs(value) < 2**53:
        return str(value)
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, dict):
        if not all(isinstance(name, str) for name in value):
            raise TypeError("JSON member names are strings")
        members = sorted(value.items(), key=lambda item: _utf16_units(item[0]))
        return "{" + ",".join(f"{canonical(name)}:{canonical(item)}" for name, item in members) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")
