"""The HTTP side of the workbench: the page's files, the headers every answer carries, and what a request must be.

Every answer of the workbench, page and API alike, carries a Content-Security-Policy that lets the
page run only its own script file (no inline script, no `eval`, no other origin; pictures of the
catalog's items are the one thing it may load from elsewhere), `X-Content-Type-Options: nosniff`,
and refuses to be framed. The API answers only requests of the page's own origin: one whose
`Origin` names another is refused, and a body must be JSON sent as `application/json`, which a
page of another origin cannot send without the browser asking first (and it is never allowed).

The page's files are package data (`dsr/server/workbench/static/`), read once through
`importlib.resources`: nothing is fetched from anywhere at run time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dsr.errors import UsageError

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
STATIC_FILES: Mapping[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "workbench.js": "text/javascript; charset=utf-8",
    "workbench.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
MAX_BODY_BYTES = 1024 * 1024


class Refused(Exception):
    """A request the workbench does not take: the status and the reason."""

    def __init__(self, status: int, reason: str, error_type: str = "illegal_argument_exception") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.error_type = error_type


@cache
def static_file(name: str) -> bytes:
    """A file of the page, from the installed package."""
    return resources.files("dsr.server.workbench").joinpath("static", name).read_bytes()


def secured(response: Response, *, cache_control: str = "no-store") -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers["Cache-Control"] = cache_control
    return response


def file_response(name: str) -> Response:
    if name not in STATIC_FILES:
        return secured(JSONResponse(error_json(404, "resource_not_found_exception", f"no such file [{name}]"),
                                    status_code=404))
    return secured(Response(static_file(name), media_type=STATIC_FILES[name]), cache_control="no-cache")


def error_json(status: int, error_type: str, reason: str) -> dict[str, Any]:
    cause = {"type": error_type, "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
    return secured(Response(body, status_code=status, media_type="application/json", headers=dict(headers or {})))


def check_origin(request: Request) -> None:
    """Refuse a request a page of another origin made (its `Origin` is not this server's own)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin.rstrip("/") not in (f"http://{host}", f"https://{host}"):
        raise Refused(403, f"the workbench API answers its own page only, not a page of origin [{origin}]",
                      "security_exception")


async def read_json(request: Request) -> dict[str, Any]:
    """The request's body: a JSON object sent as `application/json`, at most `MAX_BODY_BYTES`."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Refused(415, f"the workbench API takes application/json bodies, not [{media or 'none'}]",
                      "media_type_header_exception")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise Refused(413, f"the body is larger than {MAX_BODY_BYTES} bytes", "content_too_long_exception")
    try:
        body = json.loads(raw or b"{}", parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise Refused(400, f"the body is not JSON: {e}", "parse_exception") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object", "parse_exception")
    return body


def _no_constant(name: str) -> Any:
    raise UsageError(f"{name} is not a number JSON may hold")
