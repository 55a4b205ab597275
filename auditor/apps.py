from django.apps import AppConfig


class AuditorConfig(AppConfig):
    """The auditor's console: read-only pages over the ledger. It stores nothing of its own."""

    name = "auditor"
    verbose_name = "Auditor's console"
