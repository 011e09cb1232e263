"""Benchmarks: the core limiter beside the floor Redis sets, and this project beside peers.

A package, run as modules from the repository root, so that ``ratelimit_app`` and the
demo ``project`` are imported from this checkout with no path set up by hand::

    python3 -m bench.core         # the core limiter beside a bare EVALSHA and PING
    python3 -m bench.peers        # limits, throttled-py, pyrate-limiter, DRF, django-ratelimit
    python3 -m bench.frameworks   # Flask and FastAPI, bare and behind each limiter
    python3 -m bench.drf_http     # over HTTP: our DRF throttle against DRF's own

What a process must set up before measuring (Django settings, for the Django peers) is
done in ``bootstrap``, once per process.
"""
