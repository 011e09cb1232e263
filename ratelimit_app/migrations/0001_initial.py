"""The table-less ``Bucket`` admin entry (``managed = False``: no table is created)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Bucket",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False)),
            ],
            options={
                "verbose_name": "rate-limit bucket",
                "verbose_name_plural": "rate-limit buckets",
                "default_permissions": ("view", "change"),
                "managed": False,
            },
        ),
    ]
