"""Validation of mapped records against their dataset's JSON Schema, fast on the hot path.

Records are checked with a compiled validator (fastjsonschema) when the schema only uses
keywords whose meaning is the same in draft 7 and draft 2020-12; the reference implementation
(jsonschema) explains any failure, and is used alone for schemas outside that subset.
It never changes a record: it only says whether, and why not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from rfc3339_validator import validate_rfc3339

# Keywords that mean the same in draft 7 (what the compiled validator implements) and 2020-12.
_PORTABLE = {
    "$schema", "$id", "title", "description", "type", "properties", "required",
    "additionalProperties", "anyOf", "oneOf", "allOf", "not", "enum", "const", "pattern",
    "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "format", "items", "minItems", "maxItems", "uniqueItems", "default", "examples",
}


def _keywords(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            if key == "properties" and isinstance(value, dict):
                for sub in value.values():
                    found |= _keywords(sub)
            elif key not in {"enum", "const", "default", "examples"}:
                found |= _keywords(value)
    elif isinstance(node, list):
        for item in node:
            found |= _keywords(item)
    return found


Validate = Callable[[dict[str, Any]], "str | None"]

# Keywords that only constrain a string or a number: a null passes them whatever they say.
_SCALAR_ONLY = {"type", "format", "pattern", "minLength", "maxLength", "minimum", "maximum",
                "exclusiveMinimum", "exclusiveMaximum", "title", "description"}


def _fast_form(node: Any) -> Any:
    """The same schema, shaped for the compiled validator: `anyOf: [{type: T, …}, {type: null}]`
    (a nullable scalar, as the catalogue writes them) becomes `{type: [T, null], …}`. Same
    verdicts — the scalar's keywords ignore a null — but no failed branch: the compiled code
    tries anyOf's branches in turn and builds an exception for each that fails, which the
    profile of a batch run showed as a large share of validation."""
    if isinstance(node, list):
        return [_fast_form(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if (set(node) == {"anyOf"} and isinstance(options, list) and len(options) == 2
            and {"type": "null"} in options):
        other = options[0] if options[1] == {"type": "null"} else options[1]
        if (isinstance(other, dict) and isinstance(other.get("type"), str) and other["type"] != "null"
                and set(other) <= _SCALAR_ONLY):
            return {**other, "type": [other["type"], "null"]}
    return {key: (value if key in {"enum", "const", "default", "examples"} else _fast_form(value))
            for key, value in node.items()}


def _is_date_time(value: str) -> bool:
    """RFC 3339 date-time, as the reference's format checker reads it (upper-cased: t and z are
    accepted). The compiled validator's own pattern also takes offsets without a colon (+0100)."""
    return bool(validate_rfc3339(value.upper()))


_FORMATS = {"date-time": _is_date_time}


def _build(schema_json: str) -> Validate:
    schema = json.loads(schema_json)
    reference = Draft202012Validator(schema, format_checker=FormatChecker())

    def explain(record: dict[str, Any]) -> str | None:
        error = best_match(reference.iter_errors(record))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path) or "record"
        return f"{where}: {error.message}"

    if not _keywords(schema) <= _PORTABLE:
        return explain
    compiled = fastjsonschema.compile(_fast_form({k: v for k, v in schema.items() if k != "$schema"}),
                                      formats=_FORMATS)

    def validate(record: dict[str, Any]) -> str | None:
        try:
            compiled(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            # The reference implementation has the last word, and the clearer message, except
            # for formats it does not check without an optional dependency (date-time).
            message = explain(record)
            if message is None and exc.rule == "format":
                message = f"{exc.name.removeprefix('data.')}: {exc.message}"
            return message
        return None

    return validate


@lru_cache(maxsize=64)
def _cached(schema_json: str) -> Validate:
    return _build(schema_json)


def record_validator(schema: dict[str, Any]) -> Validate:
    """A function returning None for a valid record, else the first problem as a sentence."""
    return _cached(json.dumps(schema, sort_keys=True))
