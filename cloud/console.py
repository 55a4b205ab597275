"""Links into the Alibaba Cloud console (or cloudsim's console in the embedded setup)."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from cloud.policies import PolicyError, validate_role_name

_ALIAS_DOMAIN = ".onaliyun.com"


def _parent_alias(parent_alias_or_uid: str) -> str:
    """An enterprise alias is used as is; a bare account UID becomes `<uid>.onaliyun.com`."""
    value = (parent_alias_or_uid or "").strip()
    if not value:
        raise PolicyError("The owner account needs an alias or a UID for the switch-role link.")
    if value.isascii() and value.isdigit():
        return f"{value}{_ALIAS_DOMAIN}"
    if any(ch.isspace() or not ch.isprintable() for ch in value) or len(value) > 128:
        raise PolicyError(f"{value!r} is not an account alias.")
    return value


def switch_role_url(*, signin_base_url: str, parent_alias_or_uid: str, role_name: str) -> str:
    """`<base>/switchRole.htm?parentAlias=<alias | uid.onaliyun.com>&roleName=<name>`."""
    parts = urlsplit(signin_base_url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PolicyError(
            f"The console sign-in URL must be http(s)://host; got {signin_base_url!r}."
        )
    base = signin_base_url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    query = urlencode(
        {
            "parentAlias": _parent_alias(parent_alias_or_uid),
            "roleName": validate_role_name(role_name),
        }
    )
    return f"{base}/switchRole.htm?{query}"
