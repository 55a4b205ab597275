"""Whom a delegation's trust policy names: the trust scope (whole partner account, named
people partner-managed, named people owner-approved), the named people and the ExternalId.

`services` changes them (audited, with a reconcile of the owner's role through the outbox);
`selectors` reads them for the trust page, the credentials and console checks and the report.
"""
