from django.apps import AppConfig

from accounts import hooks
from api import receivers


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "REST API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        hooks.member_removed.connect(receivers.on_member_removed, dispatch_uid="api-member-removed")
