"""The one backoff rule of the gateway: exponential, capped, with jitter.

Every retry waits `backoff(n)` seconds after the n-th failed try: `base · 2^(n-1)`, capped at
`cap`, then multiplied by a random factor in [1 - jitter, 1 + jitter] so that many retries
started together do not hit a server together. Extraction runs, the source adapters' HTTP
retries, push deliveries and webhooks all use it (each with its own base and cap).
"""

from __future__ import annotations

import random


def backoff(attempt: int, *, base: float, cap: float, jitter: float = 0.5) -> float:
    """Seconds to wait after the `attempt`-th failed try (1 for the first)."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return max(0.0, delay * random.uniform(1 - jitter, 1 + jitter))
