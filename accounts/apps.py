from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Organisations and people"

    def ready(self) -> None:
        # why: importing the receivers connects them, and they need the models, which Django
        # loads only after every app config.
        from accounts import signals  # noqa: F401
