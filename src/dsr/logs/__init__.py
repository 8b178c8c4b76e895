"""dsr.logs."""
