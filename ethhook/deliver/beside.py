"""Whether the deliver task runs under gevent (one thread, greenlets), asked in one place."""

from __future__ import annotations

import sys


def green() -> bool:
    """True in a process whose sockets gevent patched (a gevent pool worker)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))
