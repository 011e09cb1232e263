"""A table-less model, only so the admin index lists "Rate-limit buckets".

Bucket state lives in the cache, never in the database: ``managed = False`` and the
admin class replaces every view, so no query ever touches ``ratelimit_app_bucket``.
"""

from __future__ import annotations

from django.db import models


class Bucket(models.Model):
    class Meta:
        managed = False
        verbose_name = "rate-limit bucket"
        verbose_name_plural = "rate-limit buckets"
        default_permissions = ("view", "change")

    def __str__(self) -> str:
        return "rate-limit bucket"
