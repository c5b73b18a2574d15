"""HTTP responses counted by method, route template and status, for ``GET /metrics``.

The middleware is the app's outermost: it sees every response, the 413s and CORS refusals of
the other middleware too. ``metrics/exposition.py`` renders the counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass
class RequestCounts:
    """HTTP responses by (method, route template, status); unmatched paths share one label so
    scanners cannot blow up the number of series."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def add(self, method: str, route: str, status: int) -> None:
        method = method if method in _METHODS else "OTHER"
        self.counts[(method, route, str(status))] += 1


class RequestCountMiddleware:
    """Pure ASGI: counts every HTTP response once routing has named its route template."""

    def __init__(self, app: ASGIApp, counts: RequestCounts) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.counts.add(scope["method"], route_template(scope), status)


def route_template(scope: Scope) -> str:
    """The matched route's full path template (``/api/v1/users/{user_id}``), ``<unmatched>``
    when no route matched. The route of an included router may know only its own part of the
    path, so the prefix is taken from the concrete path."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return "<unmatched>"
    path = str(scope.get("path", ""))
    try:
        concrete = template.format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return template
    if concrete and path.endswith(concrete):
        return path[: len(path) - len(concrete)] + template
    return template
