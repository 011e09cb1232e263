"""Demo URLs: an index of the endpoints, the admin (with the rate-limit bucket page) and
the limited endpoints."""

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.index, name="index"),  # admin.site.site_url, "View site", is "/"
    path("admin/", admin.site.urls),
    path("api/ping", views.PingView.as_view(), name="ping"),
    path("api/upload", views.UploadView.as_view(), name="upload"),
    path("api/builtin/ping", views.BuiltinPingView.as_view(), name="builtin-ping"),
    path("api/login", views.login, name="login"),
    path("plain/ping", views.plain_ping, name="plain-ping"),
    path("plain/upload", views.plain_upload, name="plain-upload"),
    path("healthz", views.health, name="health"),
    path("", include("ratelimit_app.urls")),  # /metrics
]
