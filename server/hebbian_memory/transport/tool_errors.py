"""Argument errors a model can act on: what was wrong, what to send instead, and that nothing was done.

The SDK reports arguments that fail the tool's schema as pydantic's own text (with a documentation URL per
error); a model reads that worse than one sentence per argument naming the expected JSON type."""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

__all__ = ["explain"]

_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a JSON object",
    "array": "a list",
    "null": "null",
}
_PLURAL = {"string": "strings", "integer": "integers", "number": "numbers", "object": "JSON objects"}
_EXAMPLES = {"tags": '["family"]', "ids": "[12, 40]", "target_ids": "[12, 40]"}
_SHOWN = 60  # characters of a wrong value quoted back


def explain(tool: str, error: ValidationError, schema: Mapping[str, Any]) -> str:
    """One line per wrong argument of ``tool``, from the tool's JSON ``schema``."""
    lines = [_problem(entry, schema) for entry in error.errors(include_url=False)]
    return (
        f"Invalid arguments for {tool}: " + "; ".join(dict.fromkeys(lines)) + f". Nothing was done; call {tool} "
        "again with the arguments fixed."
    )


def _problem(entry: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    loc: Sequence[str | int] = entry.get("loc", ())
    name = _name(loc)
    field = _field(schema, loc)
    if entry.get("type") == "missing":
        described = field.get("description")
        return f"{name} is required" + (f" ({described.rstrip('.')})" if described else "")
    if entry.get("type") == "extra_forbidden":
        return f"{name} is not an argument of this tool"
    expected = _expected(field, schema)
    if not expected:
        return f"{name}: {entry.get('msg', 'invalid value')}"
    example = _EXAMPLES.get(str(loc[-1])) if loc else None
    return f"{name} must be {expected}" + (f", e.g. {example}" if example else "") + f" (got {_shown(entry)})"


def _name(loc: Sequence[str | int]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "the arguments"


def _shown(entry: Mapping[str, Any]) -> str:
    try:
        text = json.dumps(entry.get("input"), default=str)
    except ValueError:  # a circular value cannot come from JSON, but say something anyway
        text = repr(entry.get("input"))
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _resolve(field: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = field.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return schema.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
    options = [o for o in field.get("anyOf", ()) if o.get("type") != "null"]
    if len(options) == 1:  # an optional argument: what it must be when given
        return {**_resolve(options[0], schema), **{k: v for k, v in field.items() if k != "anyOf"}}
    return field


def _field(schema: Mapping[str, Any], loc: Sequence[str | int]) -> Mapping[str, Any]:
    field: Mapping[str, Any] = schema
    for part in loc:
        field = _resolve(field, schema)
        field = field.get("items", {}) if isinstance(part, int) else field.get("properties", {}).get(part, {})
    return _resolve(field, schema)


def _expected(field: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    kind = field.get("type")
    if kind == "array":
        items = _resolve(field.get("items", {}), schema)
        inner = _PLURAL.get(str(items.get("type")))
        return f"a list of {inner}" if inner else "a list"
    expected = _TYPES.get(str(kind), "")
    bounds = [f"{word} {field[key]}" for key, word in (("minimum", "at least"), ("maximum", "at most")) if key in field]
    return expected + (f" ({', '.join(bounds)})" if expected and bounds else "")
