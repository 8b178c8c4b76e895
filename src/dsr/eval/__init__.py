"""dsr.eval."""
