"""STS: who the credentials belong to, and AssumeRole for a person's temporary credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alibabacloud_sts20150401 import models as sts_models

from cloud import policies
from cloud.sdk import (
    InvalidResponse,
    SdkTransport,
    body_of,
    checked_seconds,
    optional_text,
    required_text,
)
from cloud.values import (
    MAX_ROLE_SESSION_SECONDS,
    MIN_STS_DURATION_SECONDS,
    CallerIdentity,
    IssuedCredentials,
)


def _parse_expiration(value: Any, request_id: str | None) -> datetime:
    text = required_text(value, "Credentials.Expiration", request_id)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidResponse("Credentials.Expiration", request_id) from None
    if parsed.tzinfo is None:
        raise InvalidResponse("Credentials.Expiration", request_id)
    return parsed.astimezone(UTC)


class StsCalls(SdkTransport):
    def get_caller_identity(self) -> CallerIdentity:
        def read(response: Any, request_id: str | None) -> CallerIdentity:
            body = body_of(response, request_id)
            return CallerIdentity(
                account_id=required_text(body.account_id, "AccountId", request_id),
                arn=required_text(body.arn, "Arn", request_id),
                identity_type=optional_text(body.identity_type),
                principal_id=optional_text(body.principal_id),
                user_id=optional_text(body.user_id),
                role_id=optional_text(body.role_id),
                request_id=request_id,
            )

        return self._call(
            "GetCallerIdentity", "caller", self._sts.get_caller_identity, read, mutating=False
        )

    def assume_role(
        self,
        *,
        role_arn: str,
        session_name: str,
        duration_seconds: int,
        policy: str | None = None,
        source_identity: str | None = None,
        external_id: str | None = None,
    ) -> IssuedCredentials:
        """STS AssumeRole. `policy` is a session policy (validated by parse_session_policy);
        `source_identity` names the person behind the session (it follows role chains and
        lands in the owner's log); `external_id` answers a trust statement's ExternalId."""
        policies.parse_role_arn(role_arn)
        policies.validate_role_session_name(session_name)
        if source_identity is not None:
            policies.validate_role_session_name(source_identity)
        if external_id is not None:
            policies.validate_external_id(external_id)
        checked_seconds(
            duration_seconds,
            low=MIN_STS_DURATION_SECONDS,
            high=MAX_ROLE_SESSION_SECONDS,
            what="Credentials last",
        )
        session_policy = policies.parse_session_policy(policy) if policy is not None else None
        request = sts_models.AssumeRoleRequest(
            role_arn=role_arn,
            role_session_name=session_name,
            duration_seconds=duration_seconds,
            policy=session_policy,
            source_identity=source_identity,
            external_id=external_id,
        )

        def read(response: Any, request_id: str | None) -> IssuedCredentials:
            body = body_of(response, request_id)
            credentials = body.credentials
            if credentials is None:
                raise InvalidResponse("Credentials", request_id)
            user = body.assumed_role_user
            return IssuedCredentials(
                access_key_id=required_text(credentials.access_key_id, "AccessKeyId", request_id),
                access_key_secret=required_text(
                    credentials.access_key_secret, "AccessKeySecret", request_id
                ),
                security_token=required_text(
                    credentials.security_token, "SecurityToken", request_id
                ),
                expiration=_parse_expiration(credentials.expiration, request_id),
                assumed_role_arn=optional_text(getattr(user, "arn", None)),
                assumed_role_id=optional_text(getattr(user, "assumed_role_id", None)),
                request_id=request_id,
            )

        return self._call(
            "AssumeRole",
            f"{role_arn} session {session_name}",
            lambda: self._sts.assume_role(request),
            read,
            mutating=False,
        )
