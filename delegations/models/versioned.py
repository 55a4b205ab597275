"""Rows that count their versions (`delegations.versioned` writes them)."""

from django.db import models


class VersionedModel(models.Model):
    """A row people change under a version: every change adds one (and stamps `updated_at`), so
    a page posts the version it showed and a change made on a stale page is refused instead of
    silently overriding another person's; the ledger, an approval or an activation names the
    version it was made under."""

    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
