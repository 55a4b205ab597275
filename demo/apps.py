from django.apps import AppConfig


class DemoConfig(AppConfig):
    """`make run`'s embedded product: the supervisor, `seed_demo` and the cloud seed."""

    name = "demo"
    verbose_name = "Embedded demo"
