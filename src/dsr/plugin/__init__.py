"""dsr.plugin."""
