from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Organisations and people"

    def ready(self) -> None:
        from accounts import signals  # noqa: F401  (connects the receivers)
