"""Create (or update) the demo's admin user from the environment; docker-compose.yml runs
``python -m project.demo_admin`` after ``migrate``, so the admin is usable at once.

``DEMO_ADMIN_USERNAME`` (default ``admin``), ``DEMO_ADMIN_PASSWORD`` (no user is made
without one), ``DEMO_ADMIN_EMAIL``. Running it again resets that user's password, so it
is safe on every start.
"""

from __future__ import annotations

import os


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    name = os.environ.get("DEMO_ADMIN_USERNAME") or "admin"
    password = os.environ.get("DEMO_ADMIN_PASSWORD", "")
    if not password:
        print("DEMO_ADMIN_PASSWORD is not set: no admin user created")
        return
    user, created = get_user_model().objects.get_or_create(username=name)
    user.email = os.environ.get("DEMO_ADMIN_EMAIL", "")
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    print(f"admin user {name!r} {'created' if created else 'updated'}")


if __name__ == "__main__":
    main()
