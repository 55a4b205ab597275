"""The auditor's console tests share the ledger tests' organisations and people."""

from tests.audit.conftest import admin_user, owner_org, partner_org  # noqa: F401
