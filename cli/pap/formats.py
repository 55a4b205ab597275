"""Credentials in the forms the tools read."""

from __future__ import annotations

import json
import shlex
from typing import Any

FORMATS = ("env", "powershell", "json", "aliyun-external")


def _ps(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def env_vars(credentials: dict[str, Any]) -> dict[str, str]:
    """The variables the official SDKs and the aliyun CLI read."""
    return {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": credentials["access_key_id"],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": credentials["access_key_secret"],
        "ALIBABA_CLOUD_SECURITY_TOKEN": credentials["security_token"],
    }


def render(credentials: dict[str, Any], fmt: str) -> str:
    if fmt == "aliyun-external":
        # Exactly what the aliyun CLI's External mode parses (and alibabacloud-credentials'
        # External provider): mode StsToken with the three values.
        return json.dumps(
            {
                "mode": "StsToken",
                "access_key_id": credentials["access_key_id"],
                "access_key_secret": credentials["access_key_secret"],
                "sts_token": credentials["security_token"],
            }
        )
    if fmt == "json":
        return json.dumps(
            {
                "AccessKeyId": credentials["access_key_id"],
                "AccessKeySecret": credentials["access_key_secret"],
                "SecurityToken": credentials["security_token"],
                "Expiration": credentials["expiration"],
                "RegionId": credentials.get("region_id", ""),
            },
            indent=2,
        )
    variables = env_vars(credentials)
    if fmt == "powershell":
        return "\n".join(f"$Env:{name} = {_ps(value)}" for name, value in variables.items())
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items())
