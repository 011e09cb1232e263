"""The three demos over real HTTP, as a new user runs them: one bucket per client.

Each demo runs as the README starts it (Django's runserver, the Flask development
server, uvicorn with ``--no-proxy-headers``) on local memory. Two clients, on two
loopback addresses, each run one of the seed's sequences against the one bucket
(5 tokens; a ping takes 1, an upload 3): 5 pings then an upload is refused; an upload
leaves 2, then 2 pings pass and the third is refused. The refill is slowed to a token
per ~17 minutes so no token comes back mid-test, whatever the load.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from project.servers import running
from ratelimit_app.testing import free_port

CLIENTS = ("127.0.0.1", "127.0.0.2")  # Linux routes all of 127/8 to loopback
ENV = {
    "REDIS_URL": "",
    "RATELIMIT_REFILL_RATE": "0.001",
    # as a user's shell has it: pytest-django exports the tests' settings module
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "DJANGO_DEBUG": "1",
}
LIMITED = ("x-ratelimit-limit", "ratelimit", "ratelimit-policy")


def _command(demo: str, port: int) -> list[str]:
    return {
        "django": [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "flask": [sys.executable, "project/flask_app.py", "--port", str(port)],
        "fastapi": [
            sys.executable, "-m", "uvicorn", "project.fastapi_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers",
        ],
    }[demo]  # fmt: skip


# (ping, upload) routes per demo: Django serves them twice, with DRF and with @ratelimit
ROUTES = {
    "django": [("/api/ping", "/api/upload"), ("/plain/ping", "/plain/upload")],
    "flask": [("/api/ping", "/api/upload")],
    "fastapi": [("/api/ping", "/api/upload")],
}


@pytest.fixture(scope="module", params=sorted(ROUTES))
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int, Path]]:
    """One server per demo for this module's tests."""
    tmp_path = tmp_path_factory.mktemp(request.param)
    name, port, log = request.param, free_port(), tmp_path / "server.log"
    env = {**ENV, "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3")}
    with running(_command(name, port), env, port, log):
        yield name, port, log


def _client(address: str, port: int) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(transport=transport, base_url=f"http://127.0.0.1:{port}", timeout=30)


def _codes(client: httpx.Client, calls: list[tuple[str, str]]) -> list[int]:
    return [client.request(method, path).status_code for method, path in calls]


@pytest.mark.slow
def test_one_bucket_per_client_ping_costs_1_upload_costs_3(demo: tuple[str, int, Path]) -> None:
    name, port, log = demo
    denied_clients = 0
    for pair, (ping, upload) in enumerate(ROUTES[name]):
        # each route pair gets its own two clients: 127.0.0.1/.2, then .3/.4
        first, second = (f"127.0.0.{2 * pair + n}" for n in (1, 2))
        with _client(first, port) as one, _client(second, port) as two:
            assert _codes(one, [("GET", ping)] * 5 + [("POST", upload)]) == [200] * 5 + [429]
            uploaded = two.post(upload)
            assert uploaded.status_code == 200
            assert uploaded.headers["X-RateLimit-Remaining"] == "2"
            assert _codes(two, [("GET", ping)] * 3) == [200, 200, 429]
            denied = one.get(ping)  # the first client's bucket is still empty
            assert denied.status_code == 429
            assert set(denied.json()) == {"detail", "retry_after"}
        denied_clients += 2
    text = log.read_text()
    # one line for each client's first denial; a client's repeats within 10 s are counted
    # into one summary line later, never a line of their own
    assert text.count("rate limited: policy=default identity=") == denied_clients, text
    assert text.count("outcome=denied") == denied_clients, text
    assert "Too Many Requests: /" not in text  # Django's request logger stays quiet


@pytest.mark.slow
def test_healthz_is_never_limited(demo: tuple[str, int, Path]) -> None:
    _name, port, _log = demo
    for address in CLIENTS:
        with _client(address, port) as client:
            for _ in range(12):
                response = client.get("/healthz")
                assert response.status_code == 200
                assert not [name for name in response.headers if name.lower() in LIMITED]
