"""dsr.sidecar."""
