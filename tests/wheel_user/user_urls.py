"""The URLconf of ``use_installed.py``: the admin, with the bucket page."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
