"""The REST API (`/api/v1/`), its personal access tokens, service accounts and the device
flow that `pap login` uses. It reuses the pages' selectors and services; it has no business
rules of its own beyond who may call what (tokens and scopes)."""
