"""The `dsr` sub-commands, each a thin click shell over a library call."""
