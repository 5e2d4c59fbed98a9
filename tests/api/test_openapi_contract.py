"""The committed openapi/openapi.json is the contract: the running app must match it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi import FastAPI

from app.cli import render_openapi

CONTRACT = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_contract_matches_the_app(app: FastAPI) -> None:
    assert CONTRACT.read_text(encoding="utf-8") == render_openapi(app), (
        "openapi/openapi.json is out of date: run `snodo openapi` and commit it with the API change"
    )


def test_operation_ids_are_readable_and_unique(app: FastAPI) -> None:
    document = json.loads(render_openapi(app))
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)+", i) for i in ids), ids


def test_errors_are_documented_as_problem_json(app: FastAPI) -> None:
    document = json.loads(render_openapi(app))
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for item in document["paths"].values():
        for operation in item.values():
            default = operation["responses"]["default"]
            assert default["content"]["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
