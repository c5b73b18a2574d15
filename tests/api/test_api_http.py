"""The HTTP edge without a user: the error shape (404, 405, 422, 413, 500), security headers,
CORS, and the OpenAPI document."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import APIRouter

from perfwatch.app import create_app
from tests.support.api import assert_error, client_of, running_app
from tests.support.api_routes import API_ROUTES
from tests.support.helpers import make_settings

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def assert_security_headers(headers: dict[str, str] | object, docs: bool = False) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name  # type: ignore[index]
    csp = headers["content-security-policy"]  # type: ignore[index]
    assert "frame-ancestors 'none'" in csp
    if not docs:
        assert csp == "default-src 'none'; frame-ancestors 'none'"


async def test_not_found_and_method_not_allowed(sqlite_url: str) -> None:
    async with running_app(make_settings(sqlite_url)) as app, client_of(app) as client:
        response = await client.get("/api/v1/nothing-here")
        assert_error(response, 404, "not_found")
        assert_security_headers(response.headers)
        response = await client.put("/api/v1/auth/me")
        error = assert_error(response, 405, "method_not_allowed")
        assert "GET" in error["message"]
        # Health endpoints are unchanged and carry the headers too.
        response = await client.get("/health/live")
        assert response.json() == {"status": "ok"}
        assert_security_headers(response.headers)
        assert "cache-control" not in response.headers


async def test_validation_errors_list_fields_and_never_echo_input(sqlite_url: str) -> None:
    async with running_app(make_settings(sqlite_url)) as app, client_of(app) as client:
        huge = "A" * 200_000
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": huge})
        error = assert_error(response, 422, "validation_failed")
        assert error["details"] == [
            {
                "location": "body",
                "field": "refresh_token",
                "message": "String should have at most 4096 characters",
            }
        ]
        assert "AAAA" not in response.text and len(response.content) < 1000
        response = await client.post("/api/v1/auth/refresh", json={"other": huge})
        fields = {(d["location"], d["field"]) for d in assert_error(response, 422)["details"]}
        assert fields == {("body", "refresh_token"), ("body", "other")}
        assert "AAAA" not in response.text
        response = await client.post(
            "/api/v1/auth/refresh",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert_error(response, 422, "validation_failed")


async def test_bodies_over_the_limit_get_413(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, max_body_bytes=4096)
    async with running_app(settings) as app, client_of(app) as client:
        body = b'{"refresh_token": "' + b"x" * 5000 + b'"}'
        response = await client.post(
            "/api/v1/auth/refresh", content=body, headers={"content-type": "application/json"}
        )
        error = assert_error(response, 413, "payload_too_large")
        assert "4096" in error["message"]
        assert_security_headers(response.headers)

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            yield b'{"refresh_token": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}'

        response = await client.post(
            "/api/v1/auth/refresh", content=chunks(), headers={"content-type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert_error(response, 413, "payload_too_large")

        # Under the limit, the request goes through to the route.
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x"})
        assert_error(response, 401)


async def test_unexpected_errors_are_500_without_traceback(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(sqlite_url))
    boom = APIRouter()

    @boom.get("/api/v1/test-only/boom")
    async def explode() -> None:
        raise RuntimeError("secret internal detail")

    app.include_router(boom)
    caplog.set_level(logging.ERROR, logger="perfwatch.api")
    async with (
        running_app(make_settings(sqlite_url), app),
        client_of(app, raise_app_exceptions=False) as client,
    ):
        response = await client.get("/api/v1/test-only/boom")
    error = assert_error(response, 500, "internal_error")
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text and "RuntimeError" not in response.text
    assert error["details"] == []
    assert_security_headers(response.headers)
    logged = [r for r in caplog.records if r.name == "perfwatch.api"]
    assert logged and logged[0].exc_info is not None
    assert "secret internal detail" in str(logged[0].exc_info[1])


async def test_docs_load_every_asset_from_perfwatch_itself(sqlite_url: str) -> None:
    """/docs must work on a machine without internet: nothing from a CDN, and a CSP that
    allows nothing but this server (and the page's own inline start-up script, by hash)."""
    async with running_app(make_settings(sqlite_url)) as app, client_of(app) as client:
        response = await client.get("/docs")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert_security_headers(response.headers, docs=True)
        page = response.text

        urls = re.findall(r'(?:src|href)="([^"]*)"', page)
        kinds = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
        assert sorted(Path(url).suffix for url in urls) == sorted(kinds), urls
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["content-type"].split(";")[0] == kinds[Path(url).suffix]
            assert len(asset.content) > 500, url
        assert "url: '/openapi.json'" in page
        assert (await client.get("/openapi.json")).json()["paths"]

        directives = dict(
            (part.split()[0], part.split()[1:])
            for part in response.headers["content-security-policy"].split(";")
        )
        for sources in directives.values():  # keywords, hashes and data: only, never a host
            assert all(source.startswith("'") or source == "data:" for source in sources)
        assert directives["script-src"][0] == "'self'"
        assert "'unsafe-inline'" not in response.headers["content-security-policy"]
        for script in re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL):
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in directives["script-src"]

        assert_error(await client.get("/docs/assets/index.html"), 404, "not_found")
        assert_error(await client.get("/redoc"), 404, "not_found")


async def test_cors_is_closed_by_default(sqlite_url: str) -> None:
    preflight = {
        "origin": "https://evil.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization",
    }
    async with running_app(make_settings(sqlite_url)) as app, client_of(app) as client:
        response = await client.options("/api/v1/auth/login", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
        response = await client.get("/health/live", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in response.headers


async def test_cors_allows_a_configured_origin(sqlite_url: str) -> None:
    settings = make_settings(
        sqlite_url, cors_origins="https://perfwatch.example.com, https://ops.example.com/"
    )
    async with running_app(settings) as app, client_of(app) as client:
        response = await client.options(
            "/api/v1/auth/login",
            headers={
                "origin": "https://ops.example.com",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == "https://ops.example.com"
        assert "authorization" in response.headers["access-control-allow-headers"].lower()
        response = await client.get(
            "/health/live", headers={"origin": "https://perfwatch.example.com"}
        )
        assert response.headers["access-control-allow-origin"] == "https://perfwatch.example.com"
        response = await client.get("/health/live", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in response.headers


def test_openapi_documents_every_api_route(sqlite_url: str) -> None:
    schema = create_app(make_settings(sqlite_url)).openapi()
    assert "ErrorResponse" in schema["components"]["schemas"]
    for route in API_ROUTES:
        operation = schema["paths"][route.path][route.method.lower()]
        where = f"{route.method} {route.path}"
        assert operation.get("summary"), where
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert success, where
        errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
        takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
        expected = {"422"} if takes_input else set()
        if route.minimum_role is not None:
            expected.add("401")
        if route.minimum_role is not None and route.minimum_role.value != "viewer":
            expected.add("403")
        assert expected <= set(errors), (where, sorted(errors))
        for code, response in errors.items():
            content = response["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}, where
            assert content.get("example") or content.get("examples"), (where, code)
        for code in success:
            content = operation["responses"][code].get("content")
            if content and "application/json" in content:  # 204 has none, streams their own
                body = content["application/json"]["schema"]
                for reference in [body.get("$ref")] if "$ref" in body else body["anyOf"]:
                    reference = reference if isinstance(reference, str) else reference["$ref"]
                    name = reference.rsplit("/", 1)[1]
                    assert schema["components"]["schemas"][name].get("examples"), (where, name)
            elif content:
                assert all(item.get("example") for item in content.values()), where
