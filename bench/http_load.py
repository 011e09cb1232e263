"""Requests per second and latency over real HTTP: the demos' stacks under load.

    apt-get install -y wrk && python3 -m bench.http_load [--seconds 5] [--repeat 2]

Each app runs with 2 worker processes on one Redis, with a limit that never denies:
Flask under gunicorn's sync workers (bare, this project's extension, Flask-Limiter),
FastAPI under uvicorn with uvloop and httptools (bare, this project's dependency with
coalescing on and off, its middleware, slowapi). ``wrk`` (1 thread, 32 connections)
loads each for ``--seconds`` after a one-second warm-up; rounds interleave the apps.
Cells: median of the rounds; latency percentiles are wrk's. The apps are the ones
``bench.frameworks`` measures in process (``bench.http_apps`` builds them from the
environment for the servers).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import NamedTuple

from project.servers import get, stop_group
from ratelimit_app.testing import free_port, redis_url_or_private

from . import cli
from .tables import markdown_table

WORKERS = 2
CONNECTIONS = 32
# (framework, label, server, kind, coalesce)
APPS = (
    ("Flask", "none (bare)", "gunicorn", "bare", "1"),
    ("Flask", "ratelimit_app", "gunicorn", "ours", "1"),
    ("Flask", "Flask-Limiter", "gunicorn", "flask-limiter", "1"),
    ("FastAPI", "none (bare)", "uvicorn", "bare", "1"),
    ("FastAPI", "ratelimit_app (dependency)", "uvicorn", "ours", "1"),
    ("FastAPI", "ratelimit_app (dependency), COALESCE off", "uvicorn", "ours", "0"),
    ("FastAPI", "ratelimit_app (middleware)", "uvicorn", "ours-mw", "1"),
    ("FastAPI", "slowapi", "uvicorn", "slowapi", "1"),
)


class Result(NamedTuple):
    rate: float
    p50: float  # milliseconds
    p99: float
    errors: int


def server_command(framework: str, server: str, port: int) -> list[str]:
    if server == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "bench.http_apps:flask_from_env()",
            "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}", "--backlog", "1024",
            "--log-level", "warning",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", "bench.http_apps:fastapi_from_env", "--factory",
        "--workers", str(WORKERS), "--port", str(port), "--loop", "uvloop",
        "--http", "httptools", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


def serve_and_load(app: tuple[str, ...], url: str, seconds: float) -> Result:
    framework, _label, server, kind, coalesce = app
    port = free_port()
    env = {**os.environ, "BENCH_KIND": kind, "BENCH_URL": url, "BENCH_COALESCE": coalesce}
    process = subprocess.Popen(
        server_command(framework, server, port), env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while get(port, "/ping", timeout=2.0) != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{framework} {kind} did not start")
            time.sleep(0.1)
        wrk(port, 1.0)  # warm-up: every worker connects and loads the script
        return wrk(port, seconds)
    finally:
        stop_group(process)


def wrk(port: int, seconds: float) -> Result:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency",
         f"http://127.0.0.1:{port}/ping"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    cuts = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Result(rate, _ms(cuts["50"]), _ms(cuts["99"]), int(errors[1]) if errors else 0)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    made = cli.parser(__doc__)
    made.add_argument("--seconds", type=float, default=5.0, help="load per round")
    made.add_argument("--repeat", type=int, default=2, help="rounds of every app")
    args: argparse.Namespace = made.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    results: list[list[Result]] = [[] for _ in APPS]
    with redis_url_or_private(args.redis_url) as url:
        for _ in range(args.repeat):
            for index, app in enumerate(APPS):
                results[index].append(serve_and_load(app, url, args.seconds))
    print(
        f"# bench.http_load ({platform.python_version()}, {os.cpu_count()} cpus; {WORKERS} "
        f"workers, wrk 1 thread x {CONNECTIONS} connections, {args.repeat} rounds of "
        f"{args.seconds}s: medians)\n"
    )
    cells = []
    for (framework, label, server, *_), runs in zip(APPS, results, strict=True):
        rate, p50, p99 = (
            statistics.median(getattr(r, f) for r in runs) for f in Result._fields[:3]
        )
        errors = sum(r.errors for r in runs)
        cells.append(
            [framework, label, server, f"{rate:,.0f}", f"{p50:.2f}", f"{p99:.2f}", errors]
        )
    header = ["framework", "limiter", "server", "req/s", "p50 ms", "p99 ms", "non-2xx"]
    print(markdown_table(header, cells, labels=3))


if __name__ == "__main__":
    main()
