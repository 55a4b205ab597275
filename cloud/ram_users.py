"""RAM users: list and read them, and attach policies to them."""

from __future__ import annotations

from typing import Any

from alibabacloud_ram20150501 import models as ram_models

from cloud import policies
from cloud.errors import CloudError
from cloud.sdk import (
    InvalidResponse,
    SdkTransport,
    body_of,
    optional_text,
    required_items,
    required_text,
)
from cloud.values import AttachedPolicy, RamUser


def _user_from(model: Any, request_id: str | None) -> RamUser:
    if model is None:
        raise InvalidResponse("User", request_id)
    return RamUser(
        user_name=required_text(model.user_name, "User.UserName", request_id),
        user_id=optional_text(model.user_id),
        display_name=optional_text(model.display_name),
        comments=optional_text(model.comments),
        create_date=optional_text(model.create_date),
    )


class UserCalls(SdkTransport):
    def list_users(self) -> list[RamUser]:
        """Every RAM user of the account, across all pages."""
        return self._list_pages(
            "ListUsers",
            "users",
            lambda marker, max_items: self._ram.list_users(
                ram_models.ListUsersRequest(marker=marker, max_items=max_items)
            ),
            lambda body, request_id: [
                _user_from(item, request_id)
                for item in required_items(body.users, "user", "Users.User", request_id)
            ],
        )

    def get_user(self, name: str) -> RamUser | None:
        """The RAM user, or None when RAM says EntityNotExist.User."""
        policies.validate_ram_user_name(name)
        try:
            return self._call(
                "GetUser",
                f"user/{name}",
                lambda: self._ram.get_user(ram_models.GetUserRequest(user_name=name)),
                lambda response, rid: _user_from(body_of(response, rid).user, rid),
                mutating=False,
            )
        except CloudError as error:
            if error.code == "EntityNotExist.User":
                return None
            raise

    def list_policies_for_user(self, user_name: str) -> list[AttachedPolicy]:
        policies.validate_ram_user_name(user_name)
        return self._list_attached_policies(
            "ListPoliciesForUser",
            f"user/{user_name}",
            lambda: self._ram.list_policies_for_user(
                ram_models.ListPoliciesForUserRequest(user_name=user_name)
            ),
        )

    def attach_policy_to_user(
        self, *, user_name: str, policy_type: str, policy_name: str
    ) -> str | None:
        return self._change_user_policy("AttachPolicyToUser", user_name, policy_type, policy_name)

    def detach_policy_from_user(
        self, *, user_name: str, policy_type: str, policy_name: str
    ) -> str | None:
        return self._change_user_policy("DetachPolicyFromUser", user_name, policy_type, policy_name)

    def _change_user_policy(
        self, action: str, user_name: str, policy_type: str, policy_name: str
    ) -> str | None:
        policies.validate_ram_user_name(user_name)
        send, request_type = {
            "AttachPolicyToUser": (
                self._ram.attach_policy_to_user,
                ram_models.AttachPolicyToUserRequest,
            ),
            "DetachPolicyFromUser": (
                self._ram.detach_policy_from_user,
                ram_models.DetachPolicyFromUserRequest,
            ),
        }[action]
        request = request_type(
            user_name=user_name, policy_type=policy_type, policy_name=policy_name
        )
        return self._change_policy_attachment(
            action, f"user/{user_name}", policy_type, policy_name, lambda: send(request)
        )
