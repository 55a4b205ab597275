"""RAM policies: list and read them, and manage the versions of the Custom ones."""

from __future__ import annotations

from typing import Any

from alibabacloud_ram20150501 import models as ram_models

from cloud import policies
from cloud.errors import CloudError
from cloud.sdk import (
    InvalidResponse,
    SdkTransport,
    body_of,
    checked_description,
    document_text,
    optional_integer,
    optional_text,
    required_items,
    required_text,
)
from cloud.values import Policy, PolicyVersion


def _policy_from(model: Any, request_id: str | None, document: str | None = None) -> Policy:
    if model is None:
        raise InvalidResponse("Policy", request_id)
    return Policy(
        policy_type=required_text(model.policy_type, "Policy.PolicyType", request_id),
        policy_name=required_text(model.policy_name, "Policy.PolicyName", request_id),
        description=optional_text(model.description),
        default_version=optional_text(model.default_version),
        attachment_count=optional_integer(getattr(model, "attachment_count", None)),
        create_date=optional_text(model.create_date),
        update_date=optional_text(getattr(model, "update_date", None)),
        document=document,
        request_id=request_id,
    )


def _version_from(model: Any, request_id: str | None) -> PolicyVersion:
    if model is None:
        raise InvalidResponse("PolicyVersion", request_id)
    is_default = model.is_default_version
    if isinstance(is_default, str):
        is_default = is_default.lower() == "true"
    return PolicyVersion(
        version_id=required_text(model.version_id, "PolicyVersion.VersionId", request_id),
        is_default=bool(is_default),
        document=optional_text(model.policy_document),
        create_date=optional_text(model.create_date),
        request_id=request_id,
    )


class PolicyCalls(SdkTransport):
    def list_policies(self, policy_type: str | None = None) -> list[Policy]:
        """Every policy of the account (both types, or only `policy_type`), across all pages."""
        if policy_type is not None:
            policies.validate_policy_type(policy_type)
        return self._list_pages(
            "ListPolicies",
            f"policies/{policy_type or 'all'}",
            lambda marker, max_items: self._ram.list_policies(
                ram_models.ListPoliciesRequest(
                    policy_type=policy_type, marker=marker, max_items=max_items
                )
            ),
            lambda body, request_id: [
                _policy_from(item, request_id)
                for item in required_items(body.policies, "policy", "Policies.Policy", request_id)
            ],
        )

    def get_policy(self, *, policy_type: str, policy_name: str) -> Policy | None:
        """The policy with its default version's document, or None when it does not exist."""
        policies.validate_policy_type(policy_type)
        policies.validate_policy_name(policy_name)

        def read(response: Any, request_id: str | None) -> Policy:
            body = body_of(response, request_id)
            version = body.default_policy_version
            document = optional_text(getattr(version, "policy_document", None))
            if document is None and body.policy is not None:
                document = optional_text(getattr(body.policy, "policy_document", None))
            return _policy_from(body.policy, request_id, document)

        try:
            return self._call(
                "GetPolicy",
                f"policy/{policy_type}/{policy_name}",
                lambda: self._ram.get_policy(
                    ram_models.GetPolicyRequest(policy_type=policy_type, policy_name=policy_name)
                ),
                read,
                mutating=False,
            )
        except CloudError as error:
            if error.code == "EntityNotExist.Policy":
                return None
            raise

    def create_policy(
        self, *, policy_name: str, document: str | dict[str, Any], description: str | None = None
    ) -> Policy:
        """CreatePolicy (a Custom policy)."""
        policies.validate_policy_name(policy_name)
        request = ram_models.CreatePolicyRequest(
            policy_name=policy_name,
            policy_document=document_text(document, trust=False),
            description=checked_description(description),
        )
        return self._call(
            "CreatePolicy",
            f"policy/Custom/{policy_name}",
            lambda: self._ram.create_policy(request),
            lambda response, rid: _policy_from(body_of(response, rid).policy, rid),
            mutating=True,
        )

    def create_policy_version(
        self,
        *,
        policy_name: str,
        document: str | dict[str, Any],
        set_as_default: bool = True,
        rotate: bool = False,
    ) -> PolicyVersion:
        """CreatePolicyVersion. `rotate` asks RAM to drop the oldest non-default version when
        the 5-version limit is reached (RotateStrategy)."""
        policies.validate_policy_name(policy_name)
        request = ram_models.CreatePolicyVersionRequest(
            policy_name=policy_name,
            policy_document=document_text(document, trust=False),
            set_as_default=bool(set_as_default),
            rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded" if rotate else None,
        )
        return self._call(
            "CreatePolicyVersion",
            f"policy/Custom/{policy_name}",
            lambda: self._ram.create_policy_version(request),
            lambda response, rid: _version_from(body_of(response, rid).policy_version, rid),
            mutating=True,
        )

    def list_policy_versions(self, *, policy_type: str, policy_name: str) -> list[PolicyVersion]:
        policies.validate_policy_type(policy_type)
        policies.validate_policy_name(policy_name)

        def read(response: Any, request_id: str | None) -> list[PolicyVersion]:
            body = body_of(response, request_id)
            items = required_items(
                body.policy_versions, "policy_version", "PolicyVersions.PolicyVersion", request_id
            )
            return [_version_from(item, request_id) for item in items]

        return self._call(
            "ListPolicyVersions",
            f"policy/{policy_type}/{policy_name}",
            lambda: self._ram.list_policy_versions(
                ram_models.ListPolicyVersionsRequest(
                    policy_type=policy_type, policy_name=policy_name
                )
            ),
            read,
            mutating=False,
        )

    def delete_policy_version(self, *, policy_name: str, version_id: str) -> str | None:
        policies.validate_policy_name(policy_name)
        if not isinstance(version_id, str) or not version_id.isascii() or not version_id:
            raise policies.PolicyError(f"A policy version id looks like v3; got {version_id!r}.")
        return self._call(
            "DeletePolicyVersion",
            f"policy/Custom/{policy_name} version/{version_id}",
            lambda: self._ram.delete_policy_version(
                ram_models.DeletePolicyVersionRequest(
                    policy_name=policy_name, version_id=version_id
                )
            ),
            self._request_id_only,
            mutating=True,
        )

    def delete_policy(self, policy_name: str, *, cascade: bool = False) -> str | None:
        """DeletePolicy (Custom). Without `cascade`, RAM refuses while the policy is attached
        or has non-default versions; with it, RAM detaches it everywhere first."""
        policies.validate_policy_name(policy_name)
        request = ram_models.DeletePolicyRequest(
            policy_name=policy_name, cascading_delete=True if cascade else None
        )
        return self._call(
            "DeletePolicy",
            f"policy/Custom/{policy_name}",
            lambda: self._ram.delete_policy(request),
            self._request_id_only,
            mutating=True,
        )
