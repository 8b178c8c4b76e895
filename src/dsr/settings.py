"""Connection settings for a cluster, read once from global CLI flags or environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EMBEDDED = "embedded"


@dataclass(frozen=True)
class ConnectionSettings:
    engine_url: str | None = None  # None or "embedded" -> the embedded backend
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    verify_certs: bool = True
    data_dir: Path = Path(".dsr")
    debug: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ConnectionSettings:
        return cls(
            engine_url=options.get("engine_url"),
            username=options.get("username"),
            password=options.get("password"),
            api_key=options.get("api_key"),
            ca_cert=options.get("ca_cert"),
            verify_certs=not options.get("insecure", False),
            data_dir=Path(options.get("data_dir") or ".dsr"),
            debug=bool(options.get("debug")),
        )

    @property
    def is_embedded(self) -> bool:
        return self.engine_url in (None, "", EMBEDDED)

    def with_engine(self, url: str | None) -> ConnectionSettings:
        """These settings with another engine URL (a sub-command's own `--engine` wins)."""
        if url is None:
            return self
        return ConnectionSettings(url, self.username, self.password, self.api_key, self.ca_cert,
                                  self.verify_certs, self.data_dir, self.debug)
