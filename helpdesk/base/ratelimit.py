"""In-memory attempt limits for a single process (the reset page).

A :class:`Limiter` counts attempts per key (a client address, a secret's hash, a login)
in a sliding window. It lives in the process that serves the page: a restart forgets the
counts, which is honest for one process and keeps secrets' hashes out of the database.
Its table is bounded: when it is full of live keys, a new key is refused (fail closed)
rather than an old one forgotten, which would let a flood of addresses reset the counts.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque


class Limiter:
    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Count one attempt for ``key``: 0 when it is allowed, else the seconds until the
        next one would be."""
        now = self.clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._prune(now)
                if len(self._hits) >= self.max_keys:
                    return self.window
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 1.0)
            hits.append(now)
            return 0.0

    def _prune(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]


def client_key(address: str) -> str:
    """The key a client address is counted under: an IPv6 client by its /64 (one
    subscriber's whole network), an IPv4 one by itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
