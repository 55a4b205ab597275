from django.apps import AppConfig

from accounts.hooks import member_invited, member_removed


class DelegationsConfig(AppConfig):
    name = "delegations"
    verbose_name = "Delegations"

    def ready(self) -> None:
        # why: the receivers import the models, which Django loads only after every app config.
        from delegations.partner.receivers import on_member_invited, on_member_removed

        # The worker's stored sentences (core.i18n.stored_message) are read on pages, where
        # nothing else imports the worker: register them in every process.
        from delegations.worker import engine, partner_policy  # noqa: F401

        member_removed.connect(on_member_removed, dispatch_uid="delegations.partner.member_removed")
        member_invited.connect(on_member_invited, dispatch_uid="delegations.member_invited")
