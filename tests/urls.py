"""The URLconf of ``tests/settings.py``: the admin (with the bucket page) and the views
of ``tests/views.py``."""

from django.contrib import admin
from django.urls import path

from tests import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/ping", views.PingView.as_view(), name="ping"),
    path("api/upload", views.UploadView.as_view(), name="upload"),
    path("api/two-throttles", views.TwoThrottlesView.as_view(), name="two-throttles"),
    path("plain/ping", views.plain_ping, name="plain-ping"),
    path("plain/upload", views.plain_upload, name="plain-upload"),
    path("healthz", views.health, name="health"),
]
