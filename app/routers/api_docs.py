"""Swagger UI, ReDoc and the reason-code page, from files shipped with the project (app/static/vendor/):
officials work on intranets, where a CDN is out of reach and FastAPI's own docs pages would stay blank."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app.error_codes import API_ERROR_CODES
from app.rules.reason_codes import REASON_CODES

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_PREFIX = "/static"
VENDOR = f"{STATIC_PREFIX}/vendor"
SWAGGER_UI_PARAMETERS = {"persistAuthorization": True, "displayRequestDuration": True}

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=TEMPLATES_DIR)


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=str(request.app.openapi_url),
        title=f"{request.app.title} — Swagger UI",
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=str(request.app.openapi_url),
        title=f"{request.app.title} — ReDoc",
        redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
        with_google_fonts=False,
    )


@router.get("/reason-codes")
async def reason_codes(request: Request) -> HTMLResponse:
    """The discrepancy and rejection codes as a page (linked from the OpenAPI description, where the tables
    would push Swagger UI's Authorize button out of sight)."""
    return templates.TemplateResponse(
        request,
        "reason_codes.html",
        {"reason_codes": list(REASON_CODES.values()), "error_codes": API_ERROR_CODES},
    )
