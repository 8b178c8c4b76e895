"""`connect(settings)`: a URL in, the right `SearchBackend` out.

A user passes only a URL; whether it is Elasticsearch or OpenSearch is read from the cluster's
root response (OpenSearch names its distribution there; Elasticsearch marks every response with
an `X-Elastic-Product` header). Connection, TLS and credential failures become one clear error
naming the URL and the cause.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from dsr.backends.base import SearchBackend
from dsr.backends.client_options import ClientOptions
from dsr.errors import EngineAuthError, EngineError, EngineUnavailable
from dsr.settings import ConnectionSettings


def detect_flavor(settings: ConnectionSettings, *, timeout: float = 10.0) -> str:
    url = (settings.engine_url or "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise EngineError(f"{url!r} is not a cluster URL: expected http(s)://host:port or 'embedded'")
    try:
        resp = httpx.get(url + "/", timeout=timeout, **ClientOptions.from_settings(settings).httpx_kwargs())
    except httpx.ConnectError as e:
        cause = "TLS handshake failed" if "SSL" in str(e) or "certificate" in str(e).lower() else "connection failed"
        raise EngineUnavailable(f"cannot reach {url}: {cause} ({e})") from None
    except httpx.TimeoutException:
        raise EngineUnavailable(f"cannot reach {url}: timed out after {timeout:.0f}s") from None
    except httpx.HTTPError as e:
        raise EngineUnavailable(f"cannot reach {url}: {e}") from None
    if resp.status_code in (401, 403):
        raise EngineAuthError(f"{url} refused the credentials (HTTP {resp.status_code})")
    if resp.headers.get("x-elastic-product", "").lower() == "elasticsearch":
        return "elasticsearch"
    try:
        body = resp.json()
    except ValueError:
        body = {}
    version = body.get("version", {}) if isinstance(body, dict) else {}
    if version.get("distribution") == "opensearch":
        return "opensearch"
    if version.get("number"):
        return "elasticsearch"
    raise EngineError(f"{url} does not look like Elasticsearch or OpenSearch (HTTP {resp.status_code})")


def connect(settings: ConnectionSettings, *, flavor: str | None = None) -> SearchBackend:
    """The backend for these settings: embedded when no URL is set, else the detected engine."""
    if settings.is_embedded:
        from dsr.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(Path(settings.data_dir) / "embedded")
    flavor = flavor or detect_flavor(settings)
    if flavor == "opensearch":
        from dsr.backends.opensearch import OpenSearchBackend

        return OpenSearchBackend.connect(settings)
    from dsr.backends.elasticsearch import ElasticsearchBackend

    return ElasticsearchBackend.connect(settings)
