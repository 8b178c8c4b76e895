"""dsr.ingest."""
