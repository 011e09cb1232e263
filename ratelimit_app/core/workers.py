"""How many worker processes serve this app, to warn when memory buckets are split.

Buckets in process memory (``memory://``, Django's ``LocMemCache``) belong to one
process: under ``gunicorn -w 4`` every worker admits the full limit, four times the limit
in all, and nothing fails to show it. Neither WSGI nor ASGI tells an app at start-up how
many siblings it has, so this reads the command line and environment the server was
started with, through the server's own parser (gunicorn's, uvicorn's). A command line it
cannot read counts as one process: the warning is a courtesy, never a reason to fail.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["server_workers", "warn_if_split"]

logger = logging.getLogger("ratelimit_app")
_warned: set[str] = set()


def _program(argv: Sequence[str]) -> str:
    """``gunicorn`` for ``gunicorn ...`` and ``python3 -m gunicorn ...`` alike."""
    if not argv:
        return ""
    path = Path(argv[0])
    return path.parent.name if path.name == "__main__.py" else path.stem


def _gunicorn_workers(args: Sequence[str]) -> int:
    from gunicorn.config import Config  # only ever imported inside gunicorn

    config = Config()
    parser = config.parser()
    for source in (args, config.get_cmd_args_from_env()):  # the command line wins
        workers = getattr(parser.parse_known_args(list(source))[0], "workers", None)
        if workers is not None:
            return int(workers)
    return int(config.workers)  # gunicorn's default: WEB_CONCURRENCY, else 1


def _uvicorn_workers(args: Sequence[str]) -> int:
    from uvicorn.main import main  # only ever imported inside uvicorn

    workers = main.make_context("uvicorn", list(args), resilient_parsing=True).params.get(
        "workers"
    )
    return int(workers or os.environ.get("WEB_CONCURRENCY") or 1)


def server_workers(argv: Sequence[str] | None = None) -> int:
    """The worker processes of the gunicorn or uvicorn running us; 1 for anything else."""
    argv = sys.argv if argv is None else argv
    read = {"gunicorn": _gunicorn_workers, "uvicorn": _uvicorn_workers}.get(_program(argv))
    if read is None:
        return 1
    try:
        return read(argv[1:])
    except (Exception, SystemExit):  # argparse exits on a value it cannot read
        return 1


def warn_if_split(local: bool, store: str, argv: Sequence[str] | None = None) -> bool:
    """Log once per process when ``store`` (a description) is local to this process
    while the server runs several workers. Returns whether it warned."""
    if not local or store in _warned:
        return False
    workers = server_workers(argv)
    if workers < 2:
        return False
    _warned.add(store)
    logger.warning(
        "rate-limit buckets are in process memory (%s) but the server runs %d worker "
        "processes: each keeps its own buckets, so together they admit up to %d times "
        "each limit. Keep the buckets in Redis to share them.",
        store, workers, workers,
    )  # fmt: skip
    return True
