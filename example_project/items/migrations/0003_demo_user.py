"""The demo user, so the pages behind a login work on first run.

Its name and password are shown on every page (example/demo_user.py). It holds the
items' permissions, which the delete page requires (AsyncPermissionRequiredMixin).
Django creates permissions after the last migration, so this one creates the few it
needs itself; Django's own step then finds them in place.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import migrations
from example.demo_user import PASSWORD, PERMISSIONS, USERNAME


def add_demo_user(apps: Any, schema_editor: Any) -> None:
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    item_type, _ = content_type_model.objects.get_or_create(app_label="items", model="item")
    permissions = [
        permission_model.objects.get_or_create(
            content_type=item_type,
            codename=codename,
            defaults={"name": f"Can {codename.split('_')[0]} item"},
        )[0]
        for codename in PERMISSIONS
    ]
    user, created = user_model.objects.get_or_create(
        username=USERNAME, defaults={"password": make_password(PASSWORD)}
    )
    if created:
        user.user_permissions.add(*permissions)


def remove_demo_user(apps: Any, schema_editor: Any) -> None:
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    user_model.objects.filter(username=USERNAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("items", "0002_sample_items"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(add_demo_user, remove_demo_user)]
