"""Who a request is charged to, over HTTP, in every integration as it is deployed.

Each server runs the demo behind "trusted proxies" on loopback (127.0.0.0/8, 10.0.0.0/8
and ::1 are trusted; the test client connects from 127.0.0.1), or behind one proxy by
count (``TRUSTED_PROXY_COUNT=1``), with buckets in Redis. Each
row sends proxy header lines and checks, in Redis itself, that exactly the expected
bucket was charged and no other bucket appeared: spoofed entries, ports, IPv6 hosts of
one /64, IPv4-mapped forms and garbage never mint a bucket. Uvicorn runs with
``--no-proxy-headers`` (as documented), so the limiter, not the server, reads the header.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis

from project.servers import running
from ratelimit_app.testing import free_port
from tests.adapters.conftest import stored_tokens

pytestmark = [pytest.mark.slow, pytest.mark.same_on_every_server]

CAPACITY = 1000
PEER = "127.0.0.1"
XFF, FWD = "X-Forwarded-For", "Forwarded"
SIX = [f"2001:db8:1:2::{n:x}" for n in (1, 2, 3, 0xABC, 0xFFFF, 0x1234)]
XFF_ROWS: list[tuple[str, list[str], str]] = [
    ("no header", [], PEER),
    ("one hop", ["203.0.113.5"], "203.0.113.5"),
    ("spoofed left entry", ["6.6.6.6, 203.0.113.5"], "203.0.113.5"),
    ("trusted hops skipped", ["6.6.6.6, 203.0.113.5, 10.1.2.3, 10.0.0.2"], "203.0.113.5"),
    ("the client's own line first", ["6.6.6.6", "203.0.113.6"], "203.0.113.6"),
    ("a port", ["203.0.113.7:40001"], "203.0.113.7"),
    ("another port, same bucket", ["203.0.113.7:40002"], "203.0.113.7"),
    ("bracketed IPv6 with a port", ["[2001:db8:1:2::5]:443"], "2001:db8:1:2::"),
    *[("one /64", [host], "2001:db8:1:2::") for host in SIX],
    ("IPv4-mapped IPv6", ["::ffff:203.0.113.8"], "203.0.113.8"),
    ("garbage", ["not-an-address"], PEER),
    ("unknown", ["unknown"], PEER),
    ("brackets without an end", ["[2001:db8::1"], PEER),
    ("500 hops", ["1.1.1.1, " * 499 + "203.0.113.9"], "203.0.113.9"),
    ("500 trusted hops", ["10.0.0.1," * 500], PEER),
    ("Forwarded is not read", [], PEER),
]
FWD_ROWS: list[tuple[str, list[str], str]] = [
    ("for=", ["for=203.0.113.5"], "203.0.113.5"),
    ("spoofed left element", ["for=6.6.6.6, for=203.0.113.5;proto=http"], "203.0.113.5"),
    ("trusted by= hops", ["for=203.0.113.5;by=10.0.0.1, for=10.0.0.2"], "203.0.113.5"),
    ("quoted IPv6 with a port", ['for="[2001:db8:1:2::17]:4711"'], "2001:db8:1:2::"),
    ("the client's own line first", ["for=6.6.6.6", "for=203.0.113.6"], "203.0.113.6"),
    ("IPv4 with a port, quoted", ['for="203.0.113.7:8080"'], "203.0.113.7"),
    ("obfuscated", ["for=_hidden"], PEER),
    ("unknown", ["for=unknown"], PEER),
    ("no for=", ["proto=https;by=10.0.0.1"], PEER),
    ("unterminated quote", ['for="203.0.113.5'], PEER),
]
# TRUSTED_PROXY_COUNT=1: the rightmost entry of the joined lines, whatever it claims.
COUNT_ROWS: list[tuple[str, list[str], str]] = [
    ("no header", [], PEER),
    ("one hop", ["203.0.113.5"], "203.0.113.5"),
    ("spoofed left entry", ["6.6.6.6, 203.0.113.5"], "203.0.113.5"),
    ("the client's own line first", ["6.6.6.6", "203.0.113.6"], "203.0.113.6"),
    ("a port", ["203.0.113.7:40001"], "203.0.113.7"),
    ("garbage", ["x" * 2000], PEER),
]
SERVERS = {
    "django-runserver": (["manage.py", "runserver", "--noreload"], "django", "addr"),
    "django-gunicorn": (["-m", "gunicorn", "-w", "2", "project.wsgi:application"], "django", "b"),
    "django-asgi-uvicorn": (
        ["-m", "uvicorn", "project.asgi:application", "--no-proxy-headers"], "django", "uv",
    ),
    "flask-gunicorn": (["-m", "gunicorn", "-w", "2", "project.flask_app:app"], "flask", "b"),
    "fastapi-uvicorn": (
        ["-m", "uvicorn", "project.fastapi_app:app", "--no-proxy-headers"], "fastapi", "uv",
    ),
}  # fmt: skip


def _command(name: str, port: int) -> list[str]:
    args, _, bind = SERVERS[name]
    where = {
        "addr": [f"127.0.0.1:{port}"],
        "b": ["-b", f"127.0.0.1:{port}"],
        "uv": ["--host", "127.0.0.1", "--port", str(port)],
    }[bind]
    return [sys.executable, *args, *where]


def _rows(header: str) -> list[tuple[str, str, list[str], str]]:
    if header == "count":
        return [(why, XFF, lines, want) for why, lines, want in COUNT_ROWS]
    if header == XFF:
        rows = [(why, XFF, lines, want) for why, lines, want in XFF_ROWS]
        rows[-1] = ("Forwarded is not read", FWD, ["for=203.0.113.99"], PEER)
        return rows
    return [(why, FWD, lines, want) for why, lines, want in FWD_ROWS] + [
        ("X-Forwarded-For is not read", XFF, ["203.0.113.99"], PEER)
    ]


def _proxies(header: str) -> dict[str, str]:
    if header == "count":
        return {"RATELIMIT_TRUSTED_PROXY_COUNT": "1"}
    return {
        "RATELIMIT_TRUSTED_PROXIES": "127.0.0.0/8, 10.0.0.0/8, ::1",
        "RATELIMIT_PROXY_HEADER": header,
    }


@pytest.mark.parametrize("header", [XFF, FWD, "count"])
@pytest.mark.parametrize("name", sorted(SERVERS))
def test_each_integration_charges_the_client_the_table_names(
    name: str, header: str, redis_url: str, redis_client: redis.Redis, key_prefix: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    framework = SERVERS[name][1]
    env = {
        "REDIS_URL": redis_url,
        "RATELIMIT_KEY_PREFIX": key_prefix,
        "RATELIMIT_CAPACITY": str(CAPACITY),
        "RATELIMIT_REFILL_RATE": "0.000001",
        **_proxies(header),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
    }
    port = free_port()
    prefix = f"{key_prefix}:default:" + ("ip:" if framework == "django" else "")
    charged: Counter[str] = Counter()
    with (
        running(_command(name, port), env, port, tmp_path / "log"),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        for why, sent, lines, expected in _rows(header):
            response = client.get("/api/ping", headers=[(sent, line) for line in lines])
            assert response.status_code == 200, (why, response.text)
            charged[expected] += 1
            tokens = stored_tokens(redis_client, prefix + expected)
            assert tokens == pytest.approx(CAPACITY - charged[expected], abs=0.01), why
            stored = {key.decode() for key in redis_client.scan_iter(match=prefix + "*")}
            assert stored == {prefix + who for who in charged}, why
