"""The command line every benchmark shares, and the one way each finds its Redis.

Redis is ``--redis-url`` if given, else ``REDIS_URL``, else a private ``redis-server``
started for the run (``ratelimit_app.testing.redis_url_or_private``). Benchmarks that
time rounds take ``--seconds`` (one round) and ``--repeat`` (rounds per row) here too,
so the same words mean the same thing in each.
"""

from __future__ import annotations

import argparse
import os


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser titled by the first line of the benchmark's docstring, with ``--redis-url``."""
    made = argparse.ArgumentParser(description=(doc or "").strip().partition("\n")[0])
    made.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="an existing Redis (default: REDIS_URL, else a private redis-server)",
    )
    return made


def parse_rounds(doc: str | None, argv: list[str] | None = None) -> argparse.Namespace:
    """``--redis-url``, ``--seconds`` and ``--repeat``: the whole command line of a
    benchmark that times every row in rounds."""
    made = parser(doc)
    made.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    made.add_argument("--repeat", type=int, default=3, help="rounds of every row")
    return made.parse_args(argv)
