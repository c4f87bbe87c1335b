"""The committed OpenAPI document is current, and Swagger UI tells the whole story."""

from __future__ import annotations

import json
import re

import httpx
from fastapi import FastAPI

from app.cli import OPENAPI_PATH, render_openapi
from app.reason_docs import DOC_PATH, discrepancy_table, error_table, render
from app.rules.reason_codes import REASON_CODES


def test_committed_openapi_is_current(app: FastAPI) -> None:
    assert OPENAPI_PATH.read_text(encoding="utf-8") == render_openapi(app) + "\n", (
        "openapi/openapi.json is stale: run `make openapi`"
    )


def test_reason_code_doc_is_current() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(), "docs/reason-codes.md is stale: run `make openapi`"
    text = DOC_PATH.read_text(encoding="utf-8")
    for code in REASON_CODES:
        assert f"`{code}`" in text


async def test_served_document_has_security_examples_and_errors(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    # The description stays short (Swagger UI's Authorize button sits under it) and links the code tables.
    assert "](/reason-codes)" in schema["info"]["description"]
    assert len(schema["info"]["description"].splitlines()) <= 20
    examples = schema["paths"]["/api/v1/enterprises"]["post"]["requestBody"]["content"]["application/json"]
    assert {e["value"]["roles"][0] for e in examples["examples"].values()} == {
        "platform",
        "seller",
        "payment",
        "logistics",
        "declarant",
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert operation.get("tags"), where
            assert operation.get("operationId"), where
            if path.startswith("/api/v1/agency-callbacks/"):
                # Agencies authenticate by an HMAC signature over the body, not by an API key.
                assert "webhook-signature" in operation["description"], where
            elif path.startswith("/api/v1/public/"):
                # Public services (credit disclosure, complaints, a buyer's own check) take no key.
                assert "security" not in operation, where
            elif path.startswith("/api/"):
                assert operation.get("security") == [{"ApiKey": []}], where
                assert "401" in operation["responses"], where
            xml_door = path == "/api/v1/messages"  # CEB XML in; CEB900 XML for a refused message
            body = operation.get("requestBody")
            if body is not None:
                content = body["content"]["application/xml" if xml_door else "application/json"]
                assert content.get("examples") or content.get("schema", {}).get("$ref"), where
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path.startswith("/api/"):
                    media = set(response["content"])
                    allowed = (
                        {"application/problem+json", "application/xml"} if xml_door else {"application/problem+json"}
                    )
                    assert media, f"{where} {status}"
                    assert media <= allowed, f"{where} {status}"
                    assert "application/problem+json" in media or (xml_door and status == "400"), f"{where} {status}"
    for doc_type in ("orders", "payments", "waybills"):
        examples = schema["paths"][f"/api/v1/{doc_type}"]["post"]["requestBody"]["content"]["application/json"][
            "examples"
        ]
        assert {"matched", "mismatched"} <= set(examples)
    # The example bodies are valid documents of their schema (a newcomer can paste them in).
    assert json.dumps(schema, ensure_ascii=False)


async def test_swagger_ui_and_redoc_are_served_from_our_own_files(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        response = await client.get(page)
        assert response.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert assets, page
        for asset in assets:
            assert asset.startswith("/static/vendor/"), f"{page} loads {asset} from elsewhere"
            assert (await client.get(asset)).status_code == 200, asset
    assert "swagger-ui" in (await client.get("/docs")).text
    assert "fonts.googleapis" not in (await client.get("/redoc")).text


async def test_reason_code_page_lists_every_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/reason-codes")
    assert response.status_code == 200
    for code in REASON_CODES:
        assert f'id="{code}"' in response.text
    assert "<code>payerIdNumber</code> / <code>payerName</code>" in response.text


def test_reason_code_table_rows_keep_their_columns() -> None:
    """A ``|`` inside backticks still ends a Markdown table cell (PAYER_NOT_BUYER's row broke so)."""
    for table, columns in ((discrepancy_table(), 7), (error_table(), 4)):
        for row in table.splitlines():
            assert len(re.findall(r"(?<!\\)\|", row)) == columns + 1, row
    assert "`payerIdNumber` / `payerName`" in render()
