"""Answers checked against a versioned form definition (data, not code: see migrations/data/).

Field types: text, textarea, phone, email, date, boolean, enum, multi_enum, list (of item_fields).
Rules: required, required_if {other_field: [values]}, max_length, min_items, max_items, options.
Every wrong field is reported, with its dotted path, in one 422.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from app.core import clock
from app.core.problems import FieldError

TEXT_LIMIT = 200
TEXTAREA_LIMIT = 4000
_PHONE = re.compile(r"^\+?[0-9 ()./-]{5,25}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def answer_fields(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The fields answered in `answers` (the person section travels in `person`)."""
    return [
        field
        for section in definition.get("sections", [])
        if section.get("source") != "person"
        for field in section.get("fields", [])
    ]


def validate_answers(
    definition: Mapping[str, Any], answers: Mapping[str, Any], path: str = "body.answers"
) -> list[FieldError]:
    """Check a scheda's answers against a form definition; the list of field errors, empty when valid."""
    return _validate(answer_fields(definition), answers, path)


def _validate(fields: list[dict[str, Any]], answers: Mapping[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    known = {f["key"] for f in fields}
    for key in answers:
        if not _encodable(key):
            errors.append(
                FieldError(field=f"{path}.?", message="Not valid Unicode text", code="string_unicode")
            )
        elif key not in known:
            errors.append(
                FieldError(field=f"{path}.{key}", message="Not a field of this form", code="extra_forbidden")
            )
    for field in fields:
        key = field["key"]
        where = f"{path}.{key}"
        value = answers.get(key)
        if value is None or value == "" or value == []:
            if _required(field, answers):
                errors.append(FieldError(field=where, message="Required", code="missing"))
            continue
        errors.extend(_check(field, value, where))
    return errors


def _required(field: Mapping[str, Any], answers: Mapping[str, Any]) -> bool:
    if field.get("required"):
        return True
    condition = field.get("required_if") or {}
    return any(answers.get(other) in values for other, values in condition.items())


def _options(field: Mapping[str, Any]) -> list[Any]:
    return [option["value"] for option in field.get("options", [])]


def _check(field: Mapping[str, Any], value: Any, where: str) -> Iterable[FieldError]:
    kind = field["type"]
    if kind in ("text", "textarea", "phone", "email"):
        if not isinstance(value, str):
            yield FieldError(field=where, message="Must be text", code="string_type")
            return
        limit = field.get("max_length") or (TEXTAREA_LIMIT if kind == "textarea" else TEXT_LIMIT)
        if not _encodable(value):
            yield FieldError(field=where, message="Not valid Unicode text", code="string_unicode")
        elif len(value) > limit:
            yield FieldError(field=where, message=f"At most {limit} characters", code="string_too_long")
        elif "\x00" in value:
            yield FieldError(field=where, message="Contains a NUL character", code="string_pattern_mismatch")
        elif kind == "phone" and not _PHONE.match(value):
            yield FieldError(field=where, message="Not a phone number", code="string_pattern_mismatch")
        elif kind == "email" and not _EMAIL.match(value):
            yield FieldError(field=where, message="Not an e-mail address", code="string_pattern_mismatch")
    elif kind == "date":
        parsed = _date(value)
        if parsed is None:
            yield FieldError(field=where, message="Not a date (YYYY-MM-DD)", code="date_parsing")
        elif parsed > clock.today():
            yield FieldError(field=where, message="The date is in the future", code="date_future")
    elif kind == "boolean":
        if not isinstance(value, bool):
            yield FieldError(field=where, message="Must be true or false", code="bool_type")
    elif kind == "enum":
        if value not in _options(field):
            yield FieldError(field=where, message=f"Not one of {_options(field)}", code="enum")
    elif kind == "multi_enum":
        if not isinstance(value, list):
            yield FieldError(field=where, message="Must be a list", code="list_type")
            return
        options = _options(field)
        for index, item in enumerate(value):
            if item not in options:
                yield FieldError(field=f"{where}.{index}", message=f"Not one of {options}", code="enum")
        if len(set(map(str, value))) != len(value):
            yield FieldError(field=where, message="Repeated values", code="duplicate")
        if len(value) < field.get("min_items", 0):
            yield FieldError(field=where, message=f"At least {field['min_items']}", code="too_short")
    elif kind == "list":
        if not isinstance(value, list):
            yield FieldError(field=where, message="Must be a list", code="list_type")
            return
        if len(value) > field.get("max_items", 50):
            yield FieldError(
                field=where, message=f"At most {field.get('max_items', 50)} items", code="too_long"
            )
            return
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                yield FieldError(field=f"{where}.{index}", message="Must be an object", code="dict_type")
                continue
            yield from _validate(field["item_fields"], item, f"{where}.{index}")
    else:  # a form version with a type this code does not know is a bug, not the caller's fault
        raise ValueError(f"unknown field type {kind!r} in the form definition")


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. "\ud800" in the JSON
        return False
    return True


_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or not _ISO_DAY.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
