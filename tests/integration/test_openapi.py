"""The jobs API's OpenAPI document: generated from the code, checked in, and honoured by the running API.

schemathesis generates requests from ``docs/openapi.json`` and sends them to the jobs API on the local stack
(the real handler behind the local API Gateway): no response may be a server error, use an undocumented
status code, or break the documented schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from mediagen.api import openapi_json
from mediagen.local.stack import EmbeddedStack

pytestmark = pytest.mark.slow
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_docs_openapi_json_is_the_document_the_code_generates() -> None:
    assert DOCUMENT.exists(), "run: .venv/bin/python -m mediagen.api > docs/openapi.json"
    assert json.loads(DOCUMENT.read_text()) == json.loads(openapi_json()), (
        "docs/openapi.json is out of date: .venv/bin/python -m mediagen.api > docs/openapi.json")


def test_every_route_and_error_is_documented() -> None:
    paths = json.loads(openapi_json())["paths"]
    assert set(paths) == {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/models", "/models/{model_id}"}
    assert {"202", "400", "409", "503"} <= set(paths["/jobs"]["post"]["responses"])
    assert {"200", "404", "409"} <= set(paths["/jobs/{job_id}/cancel"]["post"]["responses"])
    assert "job_id" in paths["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"].get(
        "properties", {}) or "$ref" in paths["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]


@pytest.fixture(scope="module")
def api_stack(synthesized_template: Any) -> Iterator[EmbeddedStack]:
    with EmbeddedStack(template_path=synthesized_template, processing_seconds=0.2) as local:
        yield local


schema = schemathesis.openapi.from_path(str(DOCUMENT))


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_the_api_honours_its_openapi_document(case: Any, api_stack: EmbeddedStack) -> None:
    # Every default check runs but one: ``positive_data_acceptance`` expects a 2xx for any body the schema allows,
    # and a job's validity is more than JSON Schema can say (the request is checked against the catalog, the
    # estimate against max_credits, media URLs against private addresses): such a job is answered with the
    # documented 400 and its problems, which that check counts as a failure.
    case.call_and_validate(base_url=api_stack.api_url,
                           excluded_checks=[schemathesis.checks.positive_data_acceptance])
