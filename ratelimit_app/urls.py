"""URLs to include: ``metrics`` (Prometheus exposition of the rate-limit metrics)."""

from django.urls import path

from .views import metrics_view

urlpatterns = [path("metrics", metrics_view, name="ratelimit-metrics")]
