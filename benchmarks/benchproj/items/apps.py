from django.apps import AppConfig


class ItemsConfig(AppConfig):
    name = "benchproj.items"
    label = "items"
    default_auto_field = "django.db.models.BigAutoField"
