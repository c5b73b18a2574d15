"""ASGI middleware for the whole app: security headers, a request body size limit, CORS.

Pure ASGI (no ``BaseHTTPMiddleware``): streamed bodies are counted as they arrive and nothing
is buffered. Order, outermost first: security headers → CORS → body limit → the app, so the
413 and CORS responses carry the security headers too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perfwatch.api.docs import DOCS_CSP, DOCS_PATHS
from perfwatch.api.errors import error_body
from perfwatch.config import Settings

API_CSP = "default-src 'none'; frame-ancestors 'none'"
NO_STORE_PREFIXES = ("/api/v1/auth/",)


def security_headers(path: str) -> dict[str, str]:
    """The headers every response gets for ``path``."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": DOCS_CSP if path in DOCS_PATHS else API_CSP,
    }
    if path.startswith(NO_STORE_PREFIXES):
        # Tokens must never be kept by a browser or proxy cache.
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return headers


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in security_headers(scope["path"]).items()
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in extra}
                headers = [item for item in message.get("headers", []) if item[0] not in names]
                message = {**message, "headers": [*headers, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(Exception):
    pass


def _too_large_message(limit: int) -> Message:
    return {
        "type": "http.response.body",
        "body": json.dumps(
            error_body(
                "payload_too_large",
                f"the request body exceeds {limit} bytes; send less data per request",
            )
        ).encode(),
    }


def _too_large_start(body_length: int) -> Message:
    return {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(body_length).encode()),
            (b"connection", b"close"),
        ],
    }


class BodySizeLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413: at once when Content-Length says so, and by
    counting the bytes actually received (chunked uploads, or a Content-Length that lies)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send) -> None:
        body = _too_large_message(self.max_bytes)
        await send(_too_large_start(len(body["body"])))
        await send(body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope["headers"])
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # Whatever the app made of the interrupted body (a 400, a 500): replace it.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)


def _content_length(headers: list[tuple[bytes, bytes]] | Mapping[bytes, bytes]) -> int | None:
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def install_middleware(app: FastAPI, settings: Settings) -> None:
    # add_middleware wraps what is there: the last one added is the outermost.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    origins = settings.cors_origin_list
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials=False,  # bearer tokens, no cookies
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After", "WWW-Authenticate"],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)
