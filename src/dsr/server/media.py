"""The media type of a search body dsr reads, and of its answer, negotiated as the engines negotiate it.

Both engines read `application/json` (any parameters) and `application/x-ndjson` as JSON, and answer
406 `Content-Type header [...] is not supported` to a body of any type they do not know (`text/plain`,
a form, no type at all); a Content-Type header sent empty is a 400 on both. Elasticsearch also reads
its versioned type `application/vnd.elasticsearch+json;compatible-with=7|8`, which its own clients
send: it must then be on both `Content-Type` and `Accept`, with the same version, and the answer
carries it back. OpenSearch does not know that type (406). YAML, CBOR and Smile bodies are the
engines' and not dsr's to read: `negotiate` answers None for them and the body is relayed.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import JSONResponse

from dsr.server.errors import RequestError

JSON = "application/json"
COMPATIBLE = "application/vnd.elasticsearch+json"
JSON_TYPES = {JSON, "application/x-ndjson"}
ENGINE_TYPES = {"application/yaml", "application/cbor", "application/smile", "application/vnd.elasticsearch+yaml",
                "application/vnd.elasticsearch+cbor", "application/vnd.elasticsearch+smile",
                "application/vnd.elasticsearch+x-ndjson"}
COMPATIBLE_VERSIONS = ("7", "8")


class MediaTypeNotSupported(RequestError):
    """A body whose type the engines do not read: 406, in their short error shape."""

    def __init__(self, header: str) -> None:
        super().__init__(f"Content-Type header [{header}] is not supported", status=406,
                         error_type="media_type_not_supported")


def not_supported_response(e: MediaTypeNotSupported) -> JSONResponse:
    # the engines answer this one with a bare string, not the usual error object
    return JSONResponse({"error": e.reason, "status": e.status}, status_code=e.status)


@dataclass(frozen=True)
class MediaType:
    """What a body is read as, and the Content-Type of dsr's answer to it."""

    answer: str = JSON


def _split(header: str) -> tuple[str, dict[str, str]]:
    base, *params = header.split(";")
    out = {}
    for p in params:
        name, _, value = p.partition("=")
        out[name.strip().lower()] = value.strip().strip('"')
    return base.strip().lower(), out


def _media_error(reason: str) -> RequestError:
    return RequestError(f"Invalid media-type value on headers [Content-Type, Accept]: {reason}",
                        error_type="media_type_header_exception")


def negotiate(content_type: str | None, accept: str | None, flavor: str) -> MediaType | None:
    """How a body with these headers is read: as JSON (and answered how), or None (not dsr's to read).

    Raises:
        MediaTypeNotSupported: a type neither engine reads (406).
        RequestError: Elasticsearch's versioned type used inconsistently (400).
    """
    header = (content_type or "").strip()
    if content_type is not None and not header:  # sent, but empty (absent is the 406 below)
        if flavor == "opensearch":
            raise RequestError("invalid Content-Type header []", error_type="content_type_header_exception")
        raise RequestError("Invalid media-type value on headers [Content-Type]: Header [Content-Type] cannot be "
                           "empty.", error_type="media_type_header_exception")
    base, params = _split(header)
    accept_base, accept_params = _split((accept or "").split(",")[0])
    compatible = flavor != "opensearch"
    if base in JSON_TYPES:
        if compatible and accept_base == COMPATIBLE:
            raise _media_error("A compatible version is required on both Content-Type and Accept headers if "
                               f"either one has requested a compatible version. Accept={accept}, "
                               f"Content-Type={content_type}")
        return MediaType()
    if base == COMPATIBLE and compatible:
        version = params.get("compatible-with", "")
        if version not in COMPATIBLE_VERSIONS:
            raise _media_error(f"Content-Type version must be either version 8 or 7, but found {version or '-'}. "
                               f"Content-Type={content_type}")
        if accept_base != COMPATIBLE or accept_params.get("compatible-with") != version:
            raise _media_error("A compatible version is required on both Content-Type and Accept headers if "
                               "either one has requested a compatible version and the compatible versions must "
                               f"match. Accept={accept}, Content-Type={content_type}")
        return MediaType(f"{COMPATIBLE};compatible-with={version}")
    if base in ENGINE_TYPES:
        return None
    raise MediaTypeNotSupported(header)
