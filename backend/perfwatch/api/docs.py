"""The interactive API docs (Swagger UI) at ``/docs``, with every asset served by PerfWatch itself.

FastAPI's default page loads Swagger UI from a public CDN: on a machine without internet (many
self-hosted monitors) it is blank. The assets come from the ``swagger-ui-bundle-v2`` package
instead, and the page's one inline start-up script is allowed by its hash, so the page's
Content-Security-Policy names no origin but its own (``DOCS_CSP``, applied by the middleware).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from perfwatch.errors import NotFoundError

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
# FastAPI's default, which create_app keeps; install_docs refuses an app that moved it.
OPENAPI_URL = "/openapi.json"
TITLE = "PerfWatch API"

_ASSETS_DIR = Path(str(swagger_ui_path))
# Only what the page loads (not the bundle's demo index.html, source maps…).
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def _page() -> str:
    response = get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=TITLE,
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        # The password flow needs no redirect page (that is for the browser-based flows).
        oauth2_redirect_url=None,
    )
    return bytes(response.body).decode()


PAGE = _page()


def _inline_script_hashes(page: str) -> list[str]:
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in scripts
    ]


# Swagger UI 5 sets styles through the DOM (allowed without 'unsafe-inline') and uses data:
# images; checked in headless Chromium: no violation, operations expand and highlight.
DOCS_CSP = (
    "default-src 'none'; "
    f"script-src 'self' {' '.join(_inline_script_hashes(PAGE))}; "
    "style-src 'self'; "
    "img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({DOCS_URL})


async def swagger_ui() -> HTMLResponse:
    return HTMLResponse(PAGE)


async def docs_asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundError(f"no docs asset named {name[:80]!r}; the page at {DOCS_URL} uses them")
    return FileResponse(_ASSETS_DIR / name, media_type=media_type)


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` from the package (create the app with ``docs_url=None``
    and ``redoc_url=None``)."""
    if app.openapi_url != OPENAPI_URL:
        raise ValueError(f"the docs page reads the spec at {OPENAPI_URL}, not {app.openapi_url}")
    app.add_api_route(DOCS_URL, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(ASSETS_URL + "/{name}", docs_asset, methods=["GET"], include_in_schema=False)
