"""dsr.plugin.backends."""
