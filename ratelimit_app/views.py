"""``/metrics`` for Prometheus: ``path("", include("ratelimit_app.urls"))``.

Open like any scrape target; restrict it at the proxy or wrap the view if it must not
be public. It shows policy names and counts, never client identities.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from .core.metrics import render_metrics

__all__ = ["metrics_view"]


def metrics_view(request: HttpRequest) -> HttpResponse:
    body, content_type = render_metrics()
    return HttpResponse(body, content_type=content_type)
