"""The auditor console's one write: recording that a verifiable export was downloaded."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import Organisation, User
from audit.actions import AuditAction
from audit.context import AuditOrigin, audit_context
from audit.services import audit_record
from audit.verify_export import EXPORT_VERSION
from auditor import selectors
from auditor.exports import WrittenExport, chained_event_record


def audit_export_record(
    *, organisation: Organisation, exported_by: User, origin: AuditOrigin, written: WrittenExport
) -> dict[str, Any]:
    """Record in `organisation`'s chain that `exported_by` downloaded the export `written`
    describes, and answer that event as the export's closing line carries it (its
    attestation): the digests in its metadata bind the header and every line to the chain.

    Called as the last line is streamed, when the request's own audit origin has ended, so
    the request's `origin`, taken while it was served, is restored for the event."""
    with (
        audit_context(
            request_id=origin.request_id, source=origin.source, source_ip=origin.source_ip
        ),
        transaction.atomic(),
    ):
        event = audit_record(
            action=AuditAction.AUDIT_EXPORTED,
            actor=exported_by,
            organisation=organisation,
            target_label=organisation.name,
            metadata={
                "format_version": EXPORT_VERSION,
                "filters": dict(written.filters),
                "events": written.events,
                "omitted": written.omitted,
                "header_sha256": written.header_sha256,
                "export_sha256": written.export_sha256,
            },
        )
    stored = selectors.audit_event_chained(organisation=organisation, sequence=event.sequence)
    return chained_event_record(
        stored.event,
        stored.scope_organisation_ids,
        org_prev_hash=stored.org_prev_hash,
        org_hash=stored.org_hash,
    )
