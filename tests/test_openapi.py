"""The OpenAPI document at /openapi.json (rendered at /docs): every endpoint with an
example of what it answers and of each error it documents."""

from __future__ import annotations

import pytest

from app.api.factory import create_app
from app.config import Settings

SPEC = create_app(Settings(database_url="sqlite://")).openapi()
OPERATIONS = [(path, method, op) for path, ops in SPEC["paths"].items() for method, op in ops.items()]


def _has_example(response: dict) -> bool:
    content = response.get("content", {}).get("application/json", {})
    if "example" in content or "examples" in content:
        return True
    ref = content.get("schema", {}).get("$ref")
    if ref is None:
        return False
    schema = SPEC["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return "examples" in schema or "example" in schema


@pytest.mark.parametrize("path,method,op", [o for o in OPERATIONS if o[0] != "/metrics"], ids=lambda v: str(v)[:30])
def test_every_answer_and_error_has_an_example(path, method, op):
    for status, response in op["responses"].items():
        assert _has_example(response), f"{method.upper()} {path} {status} has no example"


@pytest.mark.parametrize(
    "path,method,op", [o for o in OPERATIONS if o[0].startswith("/v1/")], ids=lambda v: str(v)[:30]
)
def test_every_api_operation_documents_auth_and_validation_errors(path, method, op):
    assert {"401", "422"} <= set(op["responses"]), f"{method.upper()} {path}"


def test_the_docs_page_is_served(client):
    response = client.get("/docs")
    assert response.status_code == 200 and "swagger" in response.text.lower()
