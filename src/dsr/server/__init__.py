"""The Elasticsearch-compatible HTTP front of dsr: pass-through proxy plus the `ext.dsr` hybrid search."""

from dsr.server.app import create_app
from dsr.server.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
