"""``/docs`` without the internet: Swagger UI's files from the ``swagger-ui-bundle-v2`` package,
served by this app (FastAPI's default page loads them from a CDN, blank offline)."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["DOCS_STATIC", "add_offline_docs", "swagger_ui_dir"]

DOCS_STATIC = "/docs/static"
_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
logger = logging.getLogger(__name__)


def swagger_ui_dir() -> Path | None:
    """The folder of Swagger UI's files when the package that ships them is installed."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    folder = Path(str(swagger_ui_bundle.swagger_ui_path))
    return folder if all((folder / f).is_file() for f in _FILES) else None


def add_offline_docs(app: FastAPI) -> None:
    """``GET /docs``: Swagger UI over ``/openapi.json`` from local files; without the package,
    a plain page that links the schema (never a CDN)."""
    folder = swagger_ui_dir()
    if folder is not None:
        app.mount(DOCS_STATIC, StaticFiles(directory=folder), name="docs-static")
    else:
        logger.warning("swagger-ui-bundle-v2 is not installed: /docs links /openapi.json only")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        if folder is None:
            return HTMLResponse(
                f"<!DOCTYPE html><html><head><title>{app.title}</title></head><body>"
                f"<p>Interactive docs need <code>pip install swagger-ui-bundle-v2</code>; the "
                f'schema is at <a href="{root}/openapi.json">/openapi.json</a>.</p></body></html>'
            )
        static = root + DOCS_STATIC
        return get_swagger_ui_html(
            openapi_url=root + "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{static}/swagger-ui-bundle.js",
            swagger_css_url=f"{static}/swagger-ui.css",
            swagger_favicon_url=f"{static}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no call to an online validator
        )
