"""The demos' own launchers: run them as real servers, fire bounded bursts at them.

It lives beside the demos rather than in ``tests/`` because both the tests
(``tests/project/``) and the benchmarks (``bench/drf_http.py``) start the demos this
way, and benchmarks import nothing from ``tests/``. A server runs in its own process
group on a free loopback port, is ready when ``/healthz`` answers (all three demos serve
it), and is always killed on exit.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from ratelimit_app.testing import free_port

ROOT = Path(__file__).resolve().parent.parent  # this file is ROOT/project/servers.py


class DemoServer:
    """``gunicorn project.wsgi`` with ``workers`` processes and the given environment."""

    def __init__(self, env: dict[str, str], workers: int = 4) -> None:
        self.port = free_port()
        self.workers = workers
        self.env = {**os.environ, **env, "DJANGO_DEBUG": "0"}
        self.log = tempfile.NamedTemporaryFile(prefix="rl-gunicorn-", suffix=".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> DemoServer:
        args = [
            sys.executable, "-m", "gunicorn", "project.wsgi:application",
            "--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}",
            "--backlog", "512", "--timeout", "60", "--log-level", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while get(self.port, "/healthz", timeout=2.0) != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not start:\n{self.output()}")
            time.sleep(0.1)
        return self

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_group(process)

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self.log.close()


def migrate_demo(env: dict[str, str], users: dict[str, bool]) -> None:
    """Create the demo's database (``DJANGO_DB_PATH`` in ``env``) and its users:
    name -> superuser (True) or staff without any permission (False); password = name."""
    full = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "project.settings"}
    run = [sys.executable, "manage.py"]
    subprocess.run([*run, "migrate", "-v", "0"], cwd=ROOT, env=full, check=True, timeout=300)
    script = (
        "from django.contrib.auth import get_user_model\n"
        f"for name, superuser in {users!r}.items():\n"
        "    get_user_model().objects.create_user(name, password=name, is_staff=True,\n"
        "                                         is_superuser=superuser)\n"
    )
    subprocess.run([*run, "shell", "-c", script], cwd=ROOT, env=full, check=True, timeout=300)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started with ``start_new_session=True`` and all its workers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def get(port: int, path: str, timeout: float = 30.0) -> int:
    """One GET on a fresh connection; 0 when the server is not answering."""
    return request(port, "GET", path, timeout=timeout)


def request(
    port: int,
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
    timeout: float = 30.0,
) -> int:
    """One request on a fresh connection, its header lines sent as given (a name may
    repeat); the status, or 0 when the server is not answering."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path)
        for name, value in (*headers, ("Content-Length", "0")):
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def burst(port: int, path: str, requests: int = 300, concurrency: int = 50) -> Counter[int]:
    """``requests`` GETs, ``concurrency`` at a time, from one client address."""
    with ThreadPoolExecutor(concurrency) as pool:
        return Counter(pool.map(lambda _: get(port, path), range(requests)))


@contextmanager
def running(
    command: list[str], env: dict[str, str], port: int, log: Path, timeout: float = 60.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start any demo server with ``command`` from the repository root, wait until its
    ``/healthz`` answers on ``port``, and always stop it. Output goes to the file ``log``,
    so a chatty server never blocks on a full pipe."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while get(port, "/healthz", timeout=2.0) != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command} did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.1)
        yield process
    finally:
        stop_group(process)
