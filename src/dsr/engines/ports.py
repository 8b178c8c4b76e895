"""Free loopback ports, for engine nodes and for servers started by the tests and benchmarks."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of asking.

    The port is bound to 0 (the kernel picks one) and released at once, so a process started right
    after can take it; it is also a reliable "connection refused" address while nobody does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
