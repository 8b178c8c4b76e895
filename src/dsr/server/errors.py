"""Errors in the shape Elasticsearch and OpenSearch answer with, so their clients raise the usual types."""

from __future__ import annotations

from starlette.responses import JSONResponse


class RequestError(Exception):
    """A request dsr refuses, with the HTTP status and the Elasticsearch error type to report."""

    def __init__(self, reason: str, *, status: int = 400, error_type: str = "illegal_argument_exception"):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.error_type = error_type


def error_body(status: int, error_type: str, reason: str) -> dict[str, object]:
    cause = {"type": error_type, "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def error_response(status: int, error_type: str, reason: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, error_type, reason), status_code=status, headers=headers)


def request_error_response(e: RequestError) -> JSONResponse:
    return error_response(e.status, e.error_type, e.reason)
