"""dsr: drop-in hybrid product search for an existing Elasticsearch or OpenSearch cluster."""

__version__ = "0.1.0"
