"""The markdown table: medians, min-max of the repetitions, ratios to this project."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass, field
from importlib import metadata

from .tables import markdown_table
from .timing import spread


@dataclass
class Row:
    """One library on one store: what ``bench.peers`` measured, as the table shows it."""

    name: str
    backend: str
    tag: str  # prefix of every identity this row uses, unique per run
    samples: dict[str, list[float]] = field(default_factory=dict)
    mix: str = ""
    denied_mix: str = ""


DISTRIBUTIONS = (
    "redis", "limits", "throttled-py", "pyrate-limiter",
    "Django", "djangorestframework", "django-redis", "django-ratelimit",
)  # fmt: skip

# metric -> (column title, formatter, show min-max, show ratio)
COLUMNS: tuple[tuple[str, str, str, bool, bool], ...] = (
    ("hot", "hot key, decisions/s", "rate", True, True),
    ("spread", "10,000 keys, decisions/s", "rate", True, True),
    ("async", "async 50 tasks, decisions/s", "rate", True, True),
    ("cpu_hot", "client CPU us / decision, hot key", "num1", False, True),
    ("cpu_spread", "client CPU us / decision, 10,000 keys", "num1", False, True),
    ("exact", "admitted of 100 (4 procs x 16 threads; memory: 16 threads)", "int", True, False),
    ("trips", "round trips / decision, admitted", "num", False, True),
    ("commands", "Redis commands / decision, admitted", "num", False, True),
    ("trips_denied", "round trips / decision, drained key", "num", False, True),
    ("commands_denied", "Redis commands / decision, drained key", "num", False, True),
    ("mem1", "Redis bytes / bucket after 1 hit", "int", False, True),
    ("mem100", "Redis bytes / bucket after 100 hits", "int", False, True),
)


NOTES = (
    "How to read it:",
    "",
    "- Memory is per process, so the memory rows race 16 threads in one process; the "
    "Redis rows race 4 spawned processes of 16 threads each, released together.",
    "- pyrate-limiter's `try_acquire(name, blocking=False)` returns False when another "
    "thread holds its Limiter's process-wide lock, so under thread contention it denies "
    "requests its bucket would admit (`blocking=True` would instead sleep until a token "
    "frees).",
    "- DRF's `SimpleRateThrottle` reads the request history (GET) and writes it back (SET) "
    "without atomicity: concurrent requests overwrite each other's history.",
    "- Algorithms differ: django-ratelimit is a fixed window (ADD, then INCR), limits' "
    "sliding window counter weighs two fixed windows, limits' moving window keeps one "
    "list entry per admitted request (hence its bytes after 100 hits); ratelimit_app, "
    "throttled-py and pyrate-limiter keep constant-size token-bucket state. "
    "ratelimit_app's script also reads the server clock (TIME).",
    "- The hot key is drained after its first 100 decisions, so that column measures "
    "refusals. ratelimit_app remembers a denial in-process (`ratelimit_app/core/"
    "shedding.py`) and refuses a drained key locally, without a round trip, until the "
    "refill could admit it again; no peer does, so on Redis that column compares a local "
    "refusal with a Redis round trip. The drained-key columns show the same.",
    "- Round trips: calls of redis-py's `send_packed_command` (one per command or "
    "pipeline), counted in this process. Commands: `INFO commandstats` deltas after "
    "`CONFIG RESETSTAT`, including those a Lua script runs.",
)


def _fmt(value: float, kind: str) -> str:
    if kind == "rate":
        return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"
    if kind == "int":
        return f"{value:.0f}"
    if kind == "num1":
        return f"{value:.1f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _cell(samples: list[float] | None, kind: str, show_range: bool, ratio: float | None) -> str:
    if not samples:
        return "—"
    median, low, high = spread(samples)
    text = _fmt(median, kind)
    if show_range and len(samples) > 1:
        text += f" ({_fmt(low, kind)}-{_fmt(high, kind)})"
    if ratio is not None:
        text += f" x{ratio:.2f}"
    return text


def _ratio(row: Row, ours: Row | None, metric: str, wanted: bool) -> float | None:
    if not wanted or ours is None or row is ours:
        return None
    mine, theirs = ours.samples.get(metric), row.samples.get(metric)
    if not mine or not theirs or statistics.median(mine) == 0:
        return None
    return statistics.median(theirs) / statistics.median(mine)


def _cells(row: Row, ours: Row | None) -> list[str]:
    return [
        _cell(row.samples.get(metric), kind, show_range, _ratio(row, ours, metric, ratio))
        for metric, _, kind, show_range, ratio in COLUMNS
    ]


def _versions(server: str) -> str:
    found = []
    for name in DISTRIBUTIONS:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return f"Python {platform.python_version()}, redis-server {server}, " + ", ".join(found)


def render(
    rows: list[Row],
    reps: int,
    seconds: float,
    server: str,
    took: float,
    ours: str,
    load: tuple[float, ...],
) -> str:
    mine = {row.backend: row for row in rows if row.name == ours}
    lines = [
        f"## ratelimit_app against its peers ({reps} repetitions of {seconds:g} s each)",
        "",
        "Cells: median (min-max of the repetitions) and xR = peer median / ratelimit_app "
        "median on the same store (throughput: above 1 the peer is faster; round trips, "
        "commands, bytes, CPU: above 1 the peer spends more). Client CPU is this "
        "thread's own CPU time per decision (median of the repetitions): unlike the rates "
        "it moves far less when other processes load the machine. Bucket: 100 per 60 s for "
        "throughput and Redis costs, 100 per hour for exactness (the arithmetic admits "
        "exactly 100).",
        "",
        markdown_table(
            ["library", "store", *(title for _, title, *_ in COLUMNS)],
            ([row.name, row.backend, *_cells(row, mine.get(row.backend))] for row in rows),
            labels=2,
        ),
    ]
    lines += [
        "",
        "Redis commands per decision, by name: admitted (50 keys x 4 hits) | drained",
        "",
    ]
    lines += [f"- {row.name}: {row.mix} | {row.denied_mix or '-'}" for row in rows if row.mix]
    lines += ["", *NOTES]
    lines += [
        "",
        f"Versions: {_versions(server)}.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; load average (1 min) {load[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end; the whole run took {took:.0f} s.",
    ]
    return "\n".join(lines)
