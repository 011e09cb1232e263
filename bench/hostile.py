"""A hostile client against each demo: spoofed and repeated X-Forwarded-For lines, and
1,000 distinct long identities, on process memory and on Redis.

Each demo runs as one server process, as its docs say to start it: Django under
``manage.py runserver``, Flask under its own script, FastAPI under
``uvicorn --no-proxy-headers``. Every bucket holds 3 tokens and refills too slowly to
matter (``POST /api/upload`` costs all 3). The attacks, one client address throughout:

- *spoofed XFF*: 15 pings, each claiming another address in ``X-Forwarded-For``; no
  proxy is trusted, so they all share one bucket: at most 3 may pass.
- *repeated XFF lines*: one trusted proxy. 15 pings carry the client's own line (another
  address each time) and then the proxy's line (always 198.51.100.7): read in order, the
  client is the proxy's entry, so at most 3 may pass.
- *long garbage addresses*: one trusted proxy naming 1,000 "clients", each a 2 kB string
  that is no address; two uploads each. Garbage charges the peer, so all of them share
  one bucket: at most one upload may pass. The server's resident memory is read before
  and after.
- *distinct addresses*: one trusted proxy naming 1,000 real clients, each in its own
  IPv6 /64; two uploads each, so exactly one per client may pass (1,000 live buckets).

    python3 -m bench.hostile [--identities 1000] [--redis-url URL]

A benchmark, not a test: it prints a table and asserts nothing.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from project.servers import request, running
from ratelimit_app.testing import free_port, redis_url_or_private

from . import cli
from .tables import markdown_table

CAPACITY = 3
PROXY = "198.51.100.7"
Headers = list[tuple[str, str]]
DEMOS = {
    "Django (runserver)": ["manage.py", "runserver", "--noreload"],
    "Flask (its script)": ["project/flask_app.py", "--port"],
    "FastAPI (uvicorn)": ["-m", "uvicorn", "project.fastapi_app:app", "--no-proxy-headers",
                          "--host", "127.0.0.1", "--port"],
}  # fmt: skip


@contextmanager
def demo_server(demo: str, env: dict[str, str]) -> Iterator[tuple[int, int]]:
    """The demo on a free port until the block ends: ``(port, pid)``."""
    port = free_port()
    where = f"127.0.0.1:{port}" if demo.startswith("Django") else str(port)
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, *DEMOS[demo], where]
        with running(command, env, port, Path(scratch) / "log") as process:
            yield port, process.pid


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def attack(port: int, method: str, path: str, lines: list[Headers]) -> tuple[int, int]:
    """Send one request per header set, 8 at a time: (sent, admitted)."""
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda headers: request(port, method, path, headers), lines))
    return len(codes), codes.count(200)


def run_demo(demo: str, store: str, env: dict[str, str], identities: int) -> list[list[object]]:
    rows: list[list[object]] = []
    spoofs = [[("X-Forwarded-For", f"203.0.113.{i}")] for i in range(15)]
    with demo_server(demo, {**env, "RATELIMIT_TRUSTED_PROXY_COUNT": "0"}) as (port, _pid):
        rows.append([demo, store, "spoofed XFF", *attack(port, "GET", "/api/ping", spoofs),
                     CAPACITY, "", ""])  # fmt: skip
    repeated = [[("X-Forwarded-For", f"203.0.113.{i}"), ("X-Forwarded-For", PROXY)]
                for i in range(15)]  # fmt: skip
    long_ids = [[("X-Forwarded-For", f"id-{n}-" + "x" * 2048)] for n in range(identities)]
    clients = [[("X-Forwarded-For", f"2001:db8:{n:x}::1")] for n in range(identities)]
    with demo_server(demo, {**env, "RATELIMIT_TRUSTED_PROXY_COUNT": "1"}) as (port, pid):
        rows.append([demo, store, "repeated XFF lines",
                     *attack(port, "GET", "/api/ping", repeated), CAPACITY, "", ""])  # fmt: skip
        before = resident_mib(pid)
        sent, admitted = attack(port, "POST", "/api/upload", long_ids * 2)
        rows.append([demo, store, f"{identities:,} long garbage addresses", sent, admitted,
                     1, f"{before:.1f}", f"{resident_mib(pid):.1f}"])  # fmt: skip
        before = resident_mib(pid)
        sent, admitted = attack(port, "POST", "/api/upload", clients * 2)
        rows.append([demo, store, f"{identities:,} distinct addresses", sent, admitted,
                     identities, f"{before:.1f}", f"{resident_mib(pid):.1f}"])  # fmt: skip
    return rows


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--identities", type=int, default=1000)
    args = parser.parse_args()
    rows: list[list[object]] = []
    with redis_url_or_private(args.redis_url) as redis_url:
        for store, url in (("memory", ""), ("redis", redis_url)):
            for n, demo in enumerate(DEMOS):
                env = {
                    "REDIS_URL": url, "DJANGO_DEBUG": "0", "RATELIMIT_CAPACITY": str(CAPACITY),
                    "RATELIMIT_REFILL_RATE": "0.000001",
                    "RATELIMIT_KEY_PREFIX": f"hostile{os.getpid()}{store}{n}",
                }  # fmt: skip
                rows += run_demo(demo, store, env, args.identities)
    header = ["demo", "store", "attack", "requests", "admitted", "most allowed",
              "RSS before (MiB)", "RSS after (MiB)"]  # fmt: skip
    print(markdown_table(header, rows, labels=3))


if __name__ == "__main__":
    main()
