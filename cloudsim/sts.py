"""STS 2015-04-01: AssumeRole and GetCallerIdentity."""

from __future__ import annotations

from cloudsim.api import ApiContext, api_action
from cloudsim.identity import ACCOUNT, ASSUMED_ROLE, RAM_USER

VERSION = "2015-04-01"


@api_action(version=VERSION, name="GetCallerIdentity")
def get_caller_identity(ctx: ApiContext) -> dict:
    """Answers for every identity without a policy check, as STS does."""
    identity = ctx.identity
    body = {"AccountId": identity.account_uid, "Arn": identity.arn, "IdentityType": identity.kind}
    if identity.kind == ACCOUNT:
        body["PrincipalId"] = identity.account_uid
    elif identity.kind == RAM_USER:
        body["UserId"] = identity.user_id
        body["PrincipalId"] = identity.user_id
    elif identity.kind == ASSUMED_ROLE:
        body["RoleId"] = identity.role_id
        body["PrincipalId"] = f"{identity.role_id}:{identity.session_name}"
    return body
