"""The portal's one door to Alibaba Cloud RAM and STS, through the official SDKs.

Only the modules of this package import `alibabacloud_*` (and the SDK's `Tea`/`darabonba`
runtime); a test enforces it. Everything the door returns is a plain dataclass from
`cloud.values`, never an SDK model, and everything the SDK raises leaves as a
`cloud.errors.CloudError`. `CloudClient` is assembled from one class per part of the API:

* `cloud.sdk`: the SDK clients, sending one request and reading its answer, errors → CloudError
* `cloud.sts`: who the caller is, AssumeRole
* `cloud.ram_roles`, `cloud.ram_policies`, `cloud.ram_users`: RAM's roles, policies and users

Contract for callers (the delegation services and their Celery tasks):

* One request per call. The SDK's own retry is switched off; the caller retries transient
  errors (`CloudError.permanent is False`) with backoff, waiting at least
  `CloudError.retry_after_ms` when the cloud sent one. The list methods follow RAM's
  `Marker` paging, so they send one request per page.
* Every request is reported to `call_recorder(action=, target=, request_id=, outcome=,
  error_code=)` once it has an answer (`outcome` is `"succeeded"` or `"failed"`), so a
  service can write one `CloudCall` row per request.
* Write-ahead: before every *mutating* request the client calls `intent_recorder(action=,
  target=)`. Write the intent there (in its own committed transaction, since the call that
  follows cannot be rolled back); if it raises, the request is not sent. A service that
  prefers to write the intent itself can do so before calling the method: the client makes
  no request of its own before the one it was asked for.
* Names, durations and documents are validated (`cloud.policies`) before sending, so a bad
  value raises `PolicyError` (a `ValueError`) and never reaches the cloud.
* No secret is logged, recorded, put in an error or shown by a `repr`.
"""

from cloud.ram_policies import PolicyCalls
from cloud.ram_roles import RoleCalls
from cloud.ram_users import UserCalls
from cloud.sdk import cloud_error_from_sdk
from cloud.sts import StsCalls
from cloud.values import (
    OUTCOME_FAILED,
    OUTCOME_SUCCEEDED,
    AttachedPolicy,
    CallerIdentity,
    CallRecorder,
    CloudCredentials,
    IntentRecorder,
    IssuedCredentials,
    Policy,
    PolicyVersion,
    RamUser,
    Role,
)

__all__ = [
    "OUTCOME_FAILED",
    "OUTCOME_SUCCEEDED",
    "AttachedPolicy",
    "CallRecorder",
    "CallerIdentity",
    "CloudClient",
    "CloudCredentials",
    "IntentRecorder",
    "IssuedCredentials",
    "Policy",
    "PolicyVersion",
    "RamUser",
    "Role",
    "cloud_error_from_sdk",
]


class CloudClient(StsCalls, RoleCalls, PolicyCalls, UserCalls):
    """RAM and STS for one account's credentials. Create one per task; not for sharing."""
