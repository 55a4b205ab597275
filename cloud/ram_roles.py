"""RAM roles: read, create, update and delete them, and attach policies to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alibabacloud_ram20150501 import models as ram_models

from cloud import policies
from cloud.errors import CloudError
from cloud.sdk import (
    InvalidResponse,
    SdkTransport,
    body_of,
    checked_description,
    checked_seconds,
    document_text,
    optional_text,
    required_integer,
    required_text,
)
from cloud.values import MAX_ROLE_SESSION_SECONDS, MIN_ROLE_SESSION_SECONDS, AttachedPolicy, Role


def _role_from(model: Any, request_id: str | None) -> Role:
    if model is None:
        raise InvalidResponse("Role", request_id)
    return Role(
        name=required_text(model.role_name, "Role.RoleName", request_id),
        arn=required_text(model.arn, "Role.Arn", request_id),
        role_id=optional_text(model.role_id),
        description=optional_text(model.description),
        trust_document=required_text(
            model.assume_role_policy_document, "Role.AssumeRolePolicyDocument", request_id
        ),
        max_session_duration=required_integer(
            model.max_session_duration, "Role.MaxSessionDuration", request_id
        ),
        create_date=optional_text(model.create_date),
        update_date=optional_text(getattr(model, "update_date", None)),
        request_id=request_id,
    )


def _check_role_session_seconds(value: int) -> int:
    return checked_seconds(
        value,
        low=MIN_ROLE_SESSION_SECONDS,
        high=MAX_ROLE_SESSION_SECONDS,
        what="A role's maximum session is",
    )


class RoleCalls(SdkTransport):
    def _role_call(
        self, action: str, name: str, send: Callable[[], Any], *, mutating: bool
    ) -> Role:
        """A call RAM answers with the role (GetRole, CreateRole, UpdateRole)."""
        return self._call(
            action,
            f"role/{name}",
            send,
            lambda response, rid: _role_from(body_of(response, rid).role, rid),
            mutating=mutating,
        )

    def get_role(self, name: str) -> Role | None:
        """The role, or None when RAM says EntityNotExist.Role."""
        policies.validate_role_name(name)
        try:
            return self._role_call(
                "GetRole",
                name,
                lambda: self._ram.get_role(ram_models.GetRoleRequest(role_name=name)),
                mutating=False,
            )
        except CloudError as error:
            if error.code == "EntityNotExist.Role":
                return None
            raise

    def create_role(
        self,
        name: str,
        *,
        trust_document: str | dict[str, Any],
        description: str,
        max_session_duration: int,
    ) -> Role:
        policies.validate_role_name(name)
        request = ram_models.CreateRoleRequest(
            role_name=name,
            assume_role_policy_document=document_text(trust_document, trust=True),
            description=checked_description(description),
            max_session_duration=_check_role_session_seconds(max_session_duration),
        )
        return self._role_call(
            "CreateRole", name, lambda: self._ram.create_role(request), mutating=True
        )

    def update_role(
        self,
        name: str,
        *,
        trust_document: str | dict[str, Any] | None = None,
        description: str | None = None,
        max_session_duration: int | None = None,
    ) -> Role:
        """UpdateRole: only the given fields change."""
        policies.validate_role_name(name)
        if trust_document is None and description is None and max_session_duration is None:
            raise ValueError("update_role needs at least one field to change.")
        request = ram_models.UpdateRoleRequest(
            role_name=name,
            new_assume_role_policy_document=(
                document_text(trust_document, trust=True) if trust_document is not None else None
            ),
            new_description=checked_description(description),
            new_max_session_duration=(
                _check_role_session_seconds(max_session_duration)
                if max_session_duration is not None
                else None
            ),
        )
        return self._role_call(
            "UpdateRole", name, lambda: self._ram.update_role(request), mutating=True
        )

    def update_role_trust(self, name: str, document: str | dict[str, Any]) -> Role:
        return self.update_role(name, trust_document=document)

    def delete_role(self, name: str) -> str | None:
        """DeleteRole; returns the request id. RAM refuses while policies are attached."""
        policies.validate_role_name(name)
        return self._call(
            "DeleteRole",
            f"role/{name}",
            lambda: self._ram.delete_role(ram_models.DeleteRoleRequest(role_name=name)),
            self._request_id_only,
            mutating=True,
        )

    def list_policies_for_role(self, name: str) -> list[AttachedPolicy]:
        policies.validate_role_name(name)
        return self._list_attached_policies(
            "ListPoliciesForRole",
            f"role/{name}",
            lambda: self._ram.list_policies_for_role(
                ram_models.ListPoliciesForRoleRequest(role_name=name)
            ),
        )

    def attach_policy_to_role(
        self, *, role_name: str, policy_type: str, policy_name: str
    ) -> str | None:
        return self._change_role_policy("AttachPolicyToRole", role_name, policy_type, policy_name)

    def detach_policy_from_role(
        self, *, role_name: str, policy_type: str, policy_name: str
    ) -> str | None:
        return self._change_role_policy("DetachPolicyFromRole", role_name, policy_type, policy_name)

    def _change_role_policy(
        self, action: str, role_name: str, policy_type: str, policy_name: str
    ) -> str | None:
        policies.validate_role_name(role_name)
        send, request_type = {
            "AttachPolicyToRole": (
                self._ram.attach_policy_to_role,
                ram_models.AttachPolicyToRoleRequest,
            ),
            "DetachPolicyFromRole": (
                self._ram.detach_policy_from_role,
                ram_models.DetachPolicyFromRoleRequest,
            ),
        }[action]
        request = request_type(
            role_name=role_name, policy_type=policy_type, policy_name=policy_name
        )
        return self._change_policy_attachment(
            action, f"role/{role_name}", policy_type, policy_name, lambda: send(request)
        )
