"""dsr.encoders."""
