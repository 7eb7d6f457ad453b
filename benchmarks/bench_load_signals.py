"""Time load_signals (bundled pack) and the trace loaders; prints figures, asserts nothing."""

import time

from cedar_opt.config import Scenario
from cedar_opt.data import carbon
from cedar_opt.data.traces import load_trace


def best(fn, n=5):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out) * 1e3


if __name__ == "__main__":
    for days in (1, 7):
        sc = Scenario(duration_s=86400.0 * days)
        carbon._read_cached.cache_clear()
        carbon._pack_table.cache_clear()
        t = time.perf_counter()
        carbon.load_signals(sc)
        cold = (time.perf_counter() - t) * 1e3
        print(f"load_signals {days} d: cold {cold:.0f} ms, warm {best(lambda: carbon.load_signals(sc)):.1f} ms")
    for kind in ("azure_code", "azure_conv", "mooncake"):
        print(f"load_trace {kind}: {best(lambda: load_trace(kind), 3):.0f} ms")
