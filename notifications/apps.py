from django.apps import AppConfig

from accounts.hooks import member_removed


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # why: the receiver imports the models, which Django loads only after every app config.
        from notifications.receivers import on_member_removed

        member_removed.connect(on_member_removed, dispatch_uid="notifications.member_removed")
