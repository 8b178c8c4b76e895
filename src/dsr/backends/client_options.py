"""How dsr authenticates to a cluster and checks its certificate, derived once from `ConnectionSettings`.

Every client dsr opens to a cluster takes its credentials and TLS settings from here: the engine
clients of the two backends, the flavour probe of `connect`, the pass-through proxy of `dsr serve`
and the plain HTTP calls of the engine-fusion evaluation. One policy for all of them:

* an API key, when given, is the credential (`Authorization: ApiKey ...`); a username (and password)
  is sent as basic auth only without one. Elasticsearch's own client refuses both at once, so this
  is the one reading of "both given" that every client can follow;
* `--insecure` turns certificate verification off, whatever `--ca-cert` says;
* otherwise the server's certificate is checked against `--ca-cert` when given, else the system CAs.

Each client spells these options its own way; the spellings are here too, beside the policy, so a
client never reads `ConnectionSettings` itself.

The client that carries callers' searches (see `SearchBackend.for_caller`) has the TLS settings and
none of the credentials: `without_credentials()`, on the URL with any `user:password@` removed
(`url_without_credentials`).
"""

from __future__ import annotations

import ssl
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any

from dsr.settings import ConnectionSettings


@dataclass(frozen=True)
class ClientOptions:
    """The credential and TLS verification a cluster client uses."""

    api_key: str | None = None
    basic_auth: tuple[str, str] | None = None  # (username, password); None when an API key is used
    verify_certs: bool = True
    ca_cert: str | None = None  # a CA bundle to verify against; None when verification is off

    @classmethod
    def from_settings(cls, settings: ConnectionSettings) -> ClientOptions:
        api_key = settings.api_key or None
        basic = (settings.username, settings.password or "") if settings.username and not api_key else None
        verify = settings.verify_certs
        return cls(api_key=api_key, basic_auth=basic, verify_certs=verify,
                   ca_cert=(settings.ca_cert or None) if verify else None)

    def without_credentials(self) -> ClientOptions:
        """The same TLS verification, no credential: for a client whose requests carry a caller's own."""
        return replace(self, api_key=None, basic_auth=None)

    @property
    def auth_headers(self) -> dict[str, str]:
        """The API key as a request header (basic auth is left to each client's own `auth` option)."""
        return {"Authorization": f"ApiKey {self.api_key}"} if self.api_key else {}

    @property
    def verify(self) -> bool | str:
        """False (no verification), a CA bundle path, or True (the system CAs)."""
        if not self.verify_certs:
            return False
        return self.ca_cert or True

    def ssl_verify(self) -> bool | ssl.SSLContext:
        """`verify` as httpx and aiohttp take it: a CA bundle becomes an SSL context."""
        verify = self.verify
        return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify

    def httpx_kwargs(self) -> dict[str, Any]:
        return {"auth": self.basic_auth, "headers": self.auth_headers, "verify": self.ssl_verify()}

    def elasticsearch_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"verify_certs": self.verify_certs}
        if not self.verify_certs:
            kwargs["ssl_show_warn"] = False
        if self.ca_cert:
            kwargs["ca_certs"] = self.ca_cert
        if self.api_key:
            kwargs["api_key"] = self.api_key
        elif self.basic_auth:
            kwargs["basic_auth"] = self.basic_auth
        return kwargs

    def opensearch_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"verify_certs": self.verify_certs, "ssl_show_warn": self.verify_certs}
        if self.ca_cert:
            kwargs["ca_certs"] = self.ca_cert
        if self.api_key:
            kwargs["headers"] = self.auth_headers
        elif self.basic_auth:
            kwargs["http_auth"] = self.basic_auth
        return kwargs


def url_without_credentials(url: str) -> str:
    """`url` without the `user:password@` a cluster URL may carry (clients turn it into basic auth)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
