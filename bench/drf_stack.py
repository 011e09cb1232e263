"""Time per request through Django REST framework: bare, this project's throttle, DRF's own.

    python3 -m bench.drf_stack [--seconds 1] [--repeat 3] [--redis-url URL]

In process, like ``bench.frameworks``: Django's WSGI handler is called directly with one
client and one identity, with limits far above the load (every request is admitted).
Rows: an ``APIView`` with no throttle; with ``TokenBucketThrottle`` and this project's
``RateLimitMiddleware`` (headers), on locmem and on django-redis; with DRF's
``ScopedRateThrottle`` on the same caches. "Overhead" is the extra time per request
against the bare view, from the best rounds; "CPU overhead" from the median CPU.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from ratelimit_app.testing import redis_url_or_private

from . import cli
from .tables import markdown_table
from .timing import Sample, hot_key, interleaved, spread, throughput

HUGE = {"capacity": 1e9, "refill_rate": 1e9}


def configure(redis_url: str) -> None:
    from django.conf import settings

    locmem = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="bench.drf_stack",  # this module by name, also when run as __main__
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        MIDDLEWARE=["ratelimit_app.middleware.RateLimitMiddleware"],
        USE_TZ=True,
        CACHES={
            "default": {**locmem, "LOCATION": "default"},
            "memory": {**locmem, "LOCATION": "bench"},
            "redis": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_url},
        },
        RATELIMIT={"KEY_PREFIX": "benchd", "POLICIES": {"bench": HUGE}, "CACHE": "memory"},
        REST_FRAMEWORK={
            "DEFAULT_THROTTLE_RATES": {"bench": "1000000000/hour"},
            "UNAUTHENTICATED_USER": None,
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_PERMISSION_CLASSES": [],
        },
    )
    import django

    django.setup()


def views() -> dict[str, Any]:
    """One APIView per row kind; the throttle's cache is chosen per row."""
    from django.core.cache import caches
    from rest_framework.response import Response
    from rest_framework.throttling import ScopedRateThrottle
    from rest_framework.views import APIView

    from ratelimit_app.throttling import TokenBucketThrottle

    def view(throttles: list[Any]) -> Any:
        class Ping(APIView):
            throttle_classes = throttles
            throttle_scope = "bench"

            def get(self, request: Any) -> Response:
                return Response({"pong": True})

        return Ping.as_view()

    def scoped(alias: str) -> type[ScopedRateThrottle]:
        return type(f"Scoped_{alias}", (ScopedRateThrottle,), {"cache": caches[alias]})

    class Ours(TokenBucketThrottle):
        pass

    made = {"bare": view([]), "ours": view([Ours])}
    made |= {f"drf-{alias}": view([scoped(alias)]) for alias in ("memory", "redis")}
    return made


VIEWS: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """``urlpatterns``, built on first use (after Django is configured)."""
    if name != "urlpatterns":
        raise AttributeError(name)
    from django.urls import path

    return [path(f"{kind}/", view) for kind, view in VIEWS.items()]


def drf_rate(kind: str, store: str, seconds: float) -> Sample:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings
    from django.test.client import RequestFactory

    handler = WSGIHandler()
    base = RequestFactory().get(f"/{kind}/", REMOTE_ADDR="127.0.0.1").environ
    ratelimit = {"KEY_PREFIX": "benchd", "POLICIES": {"bench": HUGE}, "CACHE": store}

    def call() -> int:
        environ = dict(base)
        environ["wsgi.input"] = base["wsgi.input"]
        statuses: list[str] = []
        body = handler(environ, lambda status, headers, exc=None: statuses.append(status))
        for _chunk in body:
            pass
        body.close()
        return int(statuses[0][:3])

    with override_settings(RATELIMIT=ratelimit):
        for _ in range(50):
            status = call()
        assert status == 200, f"the bench expects every request to be admitted, got {status}"
        return throughput(lambda _k: call(), hot_key(), seconds, cpu_clock=time.process_time)


ROWS: list[tuple[str, str, str]] = [
    ("none (bare)", "bare", "-"),
    ("ratelimit_app TokenBucketThrottle + middleware", "ours", "memory"),
    ("ratelimit_app TokenBucketThrottle + middleware", "ours", "redis"),
    ("DRF ScopedRateThrottle", "drf-memory", "memory"),
    ("DRF ScopedRateThrottle", "drf-redis", "redis"),
]


def main() -> None:
    args = cli.parse_rounds(__doc__)
    with redis_url_or_private(args.redis_url) as url:
        configure(url)
        importlib.import_module("bench.drf_stack").VIEWS.update(views())
        runs: list[list[Sample]] = [[] for _ in ROWS]
        for index, (_, kind, store) in interleaved(ROWS, args.repeat):
            runs[index].append(drf_rate(kind, "memory" if store == "-" else store, args.seconds))
    print(table(runs))


def table(runs: list[list[Sample]]) -> str:
    best = [spread(rate for rate, _ in samples)[2] for samples in runs]
    cpu = [spread(c for _, c in samples)[0] for samples in runs]
    cells = []
    for index, (label, _kind, store) in enumerate(ROWS):
        extra = f"{1e6 / best[index] - 1e6 / best[0]:.0f}" if index else "-"
        extra_cpu = f"{cpu[index] - cpu[0]:.0f}" if index else "-"
        cells.append([label, store, f"{best[index]:,.0f}", extra, f"{cpu[index]:.0f}", extra_cpu])
    header = ["throttle", "store", "req/s best", "overhead µs/req (best)", "client CPU µs/req"]
    return markdown_table([*header, "CPU overhead µs/req"], cells, labels=2)


if __name__ == "__main__":
    main()
