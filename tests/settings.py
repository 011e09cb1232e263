"""Settings for the app's tests: nothing read from the environment, nothing on disk.

The tests replace ``CACHES`` and ``RATELIMIT`` per test (``tests/app/conftest.py``); the
values here are the starting point: local memory, and the two policies the views in
``tests/urls.py`` name (5 tokens refilled at 1/s; uploads cost 3).
"""

from __future__ import annotations

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "tests.urls"
STATIC_URL = "static/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "ratelimit_app",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "ratelimit_app.middleware.RateLimitMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Test users need a password hash, not a slow one.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

RATELIMIT = {
    "CACHE": "default",
    "POLICIES": {
        "default": {"capacity": 5, "refill_rate": 1.0},
        "upload": {"capacity": 5, "refill_rate": 1.0, "cost": 3},
    },
}

REST_FRAMEWORK = {
    "DEFAULT_THROTTLE_CLASSES": ["ratelimit_app.throttling.TokenBucketThrottle"],
    "EXCEPTION_HANDLER": "ratelimit_app.throttling.exception_handler",
}
