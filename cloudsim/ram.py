"""RAM 2015-05-01: roles, policies, users, AccessKeys and the account alias.

Response shapes follow ``alibaba-api.md`` §7 (the SDK's ``from_map`` field names, real JSON
ints and bools, dates ``YYYY-MM-DDThh:mm:ssZ``); validations and error codes follow §9 and §11.
Each call is authorised with ``ctx.authorize`` before it reads or changes anything, against
resources named ``acs:ram:*:<uid>:role/<name>``, ``policy/<name>``, ``user/<name>``.
"""

from __future__ import annotations

import base64
import binascii
import re
import time

from cloudsim import policy
from cloudsim.api import ApiContext, api_action
from cloudsim.errors import ApiError
from cloudsim.store import AccessKey, Policy, Role, StoreError, Tx, User

VERSION = "2015-05-01"

# Quotas (2021 RAM "Limits"): one place, so tests and the README quote the same numbers.
MAX_ROLES_PER_ACCOUNT = 1000
MAX_USERS_PER_ACCOUNT = 1000
MAX_CUSTOM_POLICIES_PER_ACCOUNT = 1500
MAX_SYSTEM_POLICIES_PER_PRINCIPAL = 20
MAX_CUSTOM_POLICIES_PER_PRINCIPAL = 5
MAX_POLICY_VERSIONS = 5
MAX_ACCESS_KEYS_PER_USER = 2  # [UNVERIFIED] the console's figure

MIN_SESSION_DURATION = 3600
MAX_SESSION_DURATION = 43200
MAX_DESCRIPTION_LENGTH = 1024
DEFAULT_MAX_ITEMS = 100

ROLE_NAME_RE = re.compile(r"^[A-Za-z0-9.-]+$")
POLICY_NAME_RE = re.compile(r"^[A-Za-z0-9-]+$")
USER_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
ALIAS_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
VERSION_ID_RE = re.compile(r"^v[1-9][0-9]{0,8}$")  # RAM numbers versions v1, v2, ...
POLICY_TYPES = ("System", "Custom")
ROTATE_OLDEST = "DeleteOldestNonDefaultVersionWhenLimitExceeded"


# --- resource names ----------------------------------------------------------------------------


def role_resource(uid: str, name: str) -> str:
    return f"acs:ram:*:{uid}:role/{name}"


def policy_resource(uid: str, name: str) -> str:
    return f"acs:ram:*:{uid}:policy/{name}"


def user_resource(uid: str, name: str) -> str:
    return f"acs:ram:*:{uid}:user/{name}"


# --- validation --------------------------------------------------------------------------------


def _name(ctx: ApiContext, param: str, kind: str, pattern: re.Pattern, max_length: int) -> str:
    value = ctx.require(param)
    if len(value) > max_length:
        raise ApiError(
            f"InvalidParameter.{kind}.Length",
            f"The parameter {param} must be 1 to {max_length} characters long.",
            400,
        )
    if not pattern.match(value):
        raise ApiError(
            f"InvalidParameter.{kind}.InvalidChars",
            f"The parameter {param} contains invalid characters.",
            400,
        )
    return value


def role_name_param(ctx: ApiContext, param: str = "RoleName") -> str:
    return _name(ctx, param, "RoleName", ROLE_NAME_RE, 64)


def policy_name_param(ctx: ApiContext) -> str:
    return _name(ctx, "PolicyName", "PolicyName", POLICY_NAME_RE, 128)


def user_name_param(ctx: ApiContext) -> str:
    return _name(ctx, "UserName", "UserName", USER_NAME_RE, 64)


def version_id_param(ctx: ApiContext) -> str:
    value = ctx.require("VersionId")
    if not VERSION_ID_RE.match(value):
        # [UNVERIFIED] code: Alibaba documents the v<number> form, not the error.
        raise ApiError(
            "InvalidParameter.VersionId.Format",
            "The parameter VersionId must look like v1, v2, ...",
            400,
        )
    return value


def policy_type_param(ctx: ApiContext, *, required: bool = True) -> str | None:
    value = ctx.param("PolicyType")
    if value is None and not required:
        return None
    if value not in POLICY_TYPES:
        raise ApiError(
            "InvalidParameter.PolicyType",
            "The parameter PolicyType must be System or Custom.",
            400,
        )
    return value


def description_param(ctx: ApiContext, param: str, code_name: str = "Description") -> str | None:
    value = ctx.params.get(param)
    if value is None:
        return None
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise ApiError(
            f"InvalidParameter.{code_name}.Length",
            f"The parameter {param} must be at most {MAX_DESCRIPTION_LENGTH} characters long.",
            400,
        )
    return value


def session_duration_param(ctx: ApiContext, param: str) -> int | None:
    # [UNVERIFIED] code: Alibaba documents the range, not the error code.
    error = ApiError(
        "InvalidParameter.MaxSessionDuration",
        f"The parameter {param} must be an integer from {MIN_SESSION_DURATION} to "
        f"{MAX_SESSION_DURATION}.",
        400,
    )
    return ctx.int_param(
        param, None, minimum=MIN_SESSION_DURATION, maximum=MAX_SESSION_DURATION, error=error
    )


def trust_document_param(ctx: ApiContext, param: str) -> str:
    text = ctx.require(param)
    if len(text) > policy.MAX_TRUST_POLICY_LENGTH:
        raise ApiError(
            f"InvalidParameter.{param}.Length",
            f"The parameter {param} must be at most {policy.MAX_TRUST_POLICY_LENGTH} "
            "characters long.",
            400,
        )
    try:
        policy.parse_trust_policy(text, max_length=policy.MAX_TRUST_POLICY_LENGTH)
    except policy.PolicyDocumentError as exc:
        raise ApiError(
            "MalformedPolicyDocument", f"The policy document is malformed: {exc}", 400
        ) from None
    return text


def policy_document_param(ctx: ApiContext) -> str:
    text = ctx.require("PolicyDocument")
    if len(text) > policy.MAX_POLICY_DOCUMENT_LENGTH:
        raise ApiError(
            "InvalidParameter.PolicyDocument.Length",
            f"The parameter PolicyDocument must be at most {policy.MAX_POLICY_DOCUMENT_LENGTH} "
            "characters long.",
            400,
        )
    try:
        policy.parse_policy_document(text, max_length=policy.MAX_POLICY_DOCUMENT_LENGTH)
    except policy.PolicyDocumentError as exc:
        raise ApiError(
            "MalformedPolicyDocument", f"The policy document is malformed: {exc}", 400
        ) from None
    return text


def max_items_param(ctx: ApiContext) -> int:
    error = ApiError(
        "InvalidParameter.MaxItems", "The parameter MaxItems must be from 1 to 1000.", 400
    )
    return ctx.int_param("MaxItems", DEFAULT_MAX_ITEMS, minimum=1, maximum=1000, error=error)  # type: ignore[return-value]


def encode_marker(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode()


def decode_marker(ctx: ApiContext) -> str | None:
    marker = ctx.param("Marker")
    if marker is None:
        return None
    try:
        return base64.urlsafe_b64decode(marker.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise ApiError(
            "InvalidParameter.Marker", "The parameter Marker is not valid.", 400
        ) from None


def seq_marker(ctx: ApiContext) -> int:
    position = decode_marker(ctx)
    if position is None:
        return 0
    if not position.isdigit():
        raise ApiError("InvalidParameter.Marker", "The parameter Marker is not valid.", 400)
    return int(position)


# --- errors ------------------------------------------------------------------------------------


def role_not_found(name: str) -> ApiError:
    return ApiError("EntityNotExist.Role", f"The role does not exist: {name}.", 404)


def user_not_found(name: str) -> ApiError:
    return ApiError("EntityNotExist.User", f"The user does not exist: {name}.", 404)


def policy_not_found(name: str, policy_type: str) -> ApiError:
    return ApiError(
        "EntityNotExist.Policy", f"The policy does not exist: {name} ({policy_type}).", 404
    )


# --- renderings --------------------------------------------------------------------------------


def role_json(role: Role, *, include_document: bool = True, document: str | None = None) -> dict:
    body = {
        "RoleId": role.role_id,
        "RoleName": role.name,
        "Arn": role.arn,
        "Description": role.description,
        "MaxSessionDuration": role.max_session_duration,
        "CreateDate": role.created_at,
        "UpdateDate": role.updated_at,
        "IsServiceLinkedRole": False,
        "RolePrincipalName": f"{role.name}@role.{role.account_uid}.onaliyunservice.com",
    }
    if include_document:
        body["AssumeRolePolicyDocument"] = document if document is not None else role.trust_document
    return body


def policy_json(item: Policy, *, attachment_count: int | None = None) -> dict:
    body = {
        "PolicyName": item.name,
        "PolicyType": item.policy_type,
        "Description": item.description,
        "DefaultVersion": item.default_version,
        "CreateDate": item.created_at,
        "UpdateDate": item.updated_at,
    }
    if attachment_count is not None:
        body["AttachmentCount"] = attachment_count
    return body


def user_json(user: User, *, full: bool = True) -> dict:
    body = {
        "UserId": user.user_id,
        "UserName": user.name,
        "DisplayName": user.display_name,
        "Email": user.email,
        "MobilePhone": user.mobile_phone,
        "Comments": user.comments,
        "CreateDate": user.created_at,
        "UpdateDate": user.updated_at,
    }
    if full and user.last_login_at:
        body["LastLoginDate"] = user.last_login_at
    return body


# --- lookups inside a transaction ----------------------------------------------------------------


def _role(tx: Tx, uid: str, name: str) -> Role:
    role = tx.role_get(uid, name)
    if role is None:
        raise role_not_found(name)
    return role


def _user(tx: Tx, uid: str, name: str) -> User:
    user = tx.user_get(uid, name)
    if user is None:
        raise user_not_found(name)
    return user


def _policy(tx: Tx, uid: str, policy_type: str, name: str) -> Policy:
    found = tx.policy_get(uid, policy_type, name)
    # Lookups are exact (System names are spelt as RAM spells them); uniqueness is
    # case-insensitive, so "mypolicy" and "MyPolicy" cannot both exist.
    if found is None or found.name != name:
        raise policy_not_found(name, policy_type)
    return found


# --- roles -------------------------------------------------------------------------------------


@api_action(version=VERSION, name="CreateRole", mutating=True)
def create_role(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    name = role_name_param(ctx)
    document = trust_document_param(ctx, "AssumeRolePolicyDocument")
    description = description_param(ctx, "Description") or ""
    duration = session_duration_param(ctx, "MaxSessionDuration") or MIN_SESSION_DURATION
    ctx.bool_param("AllowConsoleLogin")
    ctx.authorize("ram:CreateRole", role_resource(uid, name))
    with ctx.store.write() as tx:
        if tx.role_get(uid, name) is not None:
            raise ApiError("EntityAlreadyExists.Role", "The role does already EXIST.", 409)
        if tx.role_count(uid) >= MAX_ROLES_PER_ACCOUNT:
            raise ApiError(
                "LimitExceeded.Role",
                f"The count of roles exceeds the limit of {MAX_ROLES_PER_ACCOUNT}.",
                409,
            )
        role = tx.role_create(
            account_uid=uid,
            name=name,
            trust_document=document,
            description=description,
            max_session_duration=duration,
        )
    ctx.log_extra["resource"] = role.arn
    return {"Role": role_json(role)}


@api_action(version=VERSION, name="GetRole")
def get_role(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    name = role_name_param(ctx)
    ctx.authorize("ram:GetRole", role_resource(uid, name))
    with ctx.store.read() as tx:
        role = _role(tx, uid, name)
    document = None
    if (
        ctx.stale_read_seconds > 0
        and role.previous_trust_document is not None
        and role.trust_changed_at is not None
        and time.time() - role.trust_changed_at < ctx.stale_read_seconds
    ):
        document = role.previous_trust_document
        ctx.log_extra["stale_read"] = True
    return {"Role": role_json(role, document=document)}


@api_action(version=VERSION, name="UpdateRole", mutating=True)
def update_role(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    name = role_name_param(ctx)
    document = None
    if ctx.params.get("NewAssumeRolePolicyDocument") is not None:
        document = trust_document_param(ctx, "NewAssumeRolePolicyDocument")
    description = description_param(ctx, "NewDescription", "NewDescription")
    duration = session_duration_param(ctx, "NewMaxSessionDuration")
    ctx.bool_param("NewAllowConsoleLogin")
    ctx.authorize("ram:UpdateRole", role_resource(uid, name))
    with ctx.store.write() as tx:
        _role(tx, uid, name)
        role = tx.role_update(
            account_uid=uid,
            name=name,
            trust_document=document,
            description=description,
            max_session_duration=duration,
        )
    ctx.log_extra["resource"] = role.arn
    return {"Role": role_json(role)}


@api_action(version=VERSION, name="DeleteRole", mutating=True)
def delete_role(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    name = role_name_param(ctx)
    ctx.authorize("ram:DeleteRole", role_resource(uid, name))
    with ctx.store.write() as tx:
        role = _role(tx, uid, name)
        if tx.attachment_list(uid, "Role", role.name):
            raise ApiError(
                "DeleteConflict.Role.Policy",
                "The role CAN NOT has any attached policy while deleting the role.",
                409,
            )
        tx.role_delete(account_uid=uid, name=name)
    ctx.log_extra["resource"] = role.arn
    return {}


@api_action(version=VERSION, name="ListRoles")
def list_roles(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    max_items = max_items_param(ctx)
    after = seq_marker(ctx)
    ctx.authorize("ram:ListRoles", role_resource(uid, "*"))
    with ctx.store.read() as tx:
        page = tx.role_list(uid, after_seq=after, limit=max_items + 1)
    truncated = len(page) > max_items
    page = page[:max_items]
    body: dict = {
        "IsTruncated": truncated,
        "Roles": {"Role": [role_json(role, include_document=False) for _, role in page]},
    }
    if truncated:
        body["Marker"] = encode_marker(str(page[-1][0]))
    return body


# --- attachments (roles and users share the rules) ---------------------------------------------


def _attach(ctx: ApiContext, principal_type: str, principal_name: str, resource: str) -> None:
    uid = ctx.identity.account_uid
    policy_type = policy_type_param(ctx)
    policy_name = policy_name_param(ctx)
    action = f"ram:AttachPolicyTo{principal_type}"
    ctx.authorize(action, resource)
    ctx.authorize(action, policy_resource(uid, policy_name))
    with ctx.store.write() as tx:
        principal = (
            _role(tx, uid, principal_name).name
            if principal_type == "Role"
            else _user(tx, uid, principal_name).name
        )
        found = _policy(tx, uid, policy_type, policy_name)  # type: ignore[arg-type]
        if tx.attachment_exists(uid, principal_type, principal, policy_type, found.name):  # type: ignore[arg-type]
            raise ApiError(
                f"EntityAlreadyExists.{principal_type}.Policy",
                f"The policy {found.name} is already attached to the {principal_type.lower()}.",
                409,
            )
        limit = (
            MAX_SYSTEM_POLICIES_PER_PRINCIPAL
            if policy_type == "System"
            else MAX_CUSTOM_POLICIES_PER_PRINCIPAL
        )
        if tx.attachment_count_for_principal(uid, principal_type, principal, policy_type) >= limit:  # type: ignore[arg-type]
            raise ApiError(
                f"LimitExceeded.{principal_type}.Policy",
                f"The count of {policy_type} policies attached to the "
                f"{principal_type.lower()} exceeds the limit of {limit}.",
                409,
            )
        tx.attachment_add(
            account_uid=uid,
            principal_type=principal_type,
            principal_name=principal,
            policy_type=policy_type,
            policy_name=found.name,  # type: ignore[arg-type]
        )
    ctx.log_extra["resource"] = resource


def _detach(ctx: ApiContext, principal_type: str, principal_name: str, resource: str) -> None:
    uid = ctx.identity.account_uid
    policy_type = policy_type_param(ctx)
    policy_name = policy_name_param(ctx)
    action = f"ram:DetachPolicyFrom{principal_type}"
    ctx.authorize(action, resource)
    ctx.authorize(action, policy_resource(uid, policy_name))
    with ctx.store.write() as tx:
        principal = (
            _role(tx, uid, principal_name).name
            if principal_type == "Role"
            else _user(tx, uid, principal_name).name
        )
        found = _policy(tx, uid, policy_type, policy_name)  # type: ignore[arg-type]
        removed = tx.attachment_remove(
            account_uid=uid,
            principal_type=principal_type,
            principal_name=principal,
            policy_type=policy_type,
            policy_name=found.name,  # type: ignore[arg-type]
        )
        if not removed:
            raise ApiError(
                f"EntityNotExist.{principal_type}.Policy",
                f"The policy {found.name} is not attached to the {principal_type.lower()}.",
                404,
            )
    ctx.log_extra["resource"] = resource


def _attached(ctx: ApiContext, principal_type: str, principal_name: str) -> dict:
    uid = ctx.identity.account_uid
    with ctx.store.read() as tx:
        if principal_type == "Role":
            _role(tx, uid, principal_name)
        else:
            _user(tx, uid, principal_name)
        items = []
        for attachment in tx.attachment_list(uid, principal_type, principal_name):
            found = tx.policy_get(uid, attachment.policy_type, attachment.policy_name)
            items.append(
                {
                    "PolicyName": attachment.policy_name,
                    "PolicyType": attachment.policy_type,
                    "DefaultVersion": found.default_version if found else "v1",
                    "Description": found.description if found else "",
                    "AttachDate": attachment.attached_at,
                }
            )
    return {"Policies": {"Policy": items}}


@api_action(version=VERSION, name="AttachPolicyToRole", mutating=True)
def attach_policy_to_role(ctx: ApiContext) -> dict:
    name = role_name_param(ctx)
    _attach(ctx, "Role", name, role_resource(ctx.identity.account_uid, name))
    return {}


@api_action(version=VERSION, name="DetachPolicyFromRole", mutating=True)
def detach_policy_from_role(ctx: ApiContext) -> dict:
    name = role_name_param(ctx)
    _detach(ctx, "Role", name, role_resource(ctx.identity.account_uid, name))
    return {}


@api_action(version=VERSION, name="ListPoliciesForRole")
def list_policies_for_role(ctx: ApiContext) -> dict:
    name = role_name_param(ctx)
    ctx.authorize("ram:ListPoliciesForRole", role_resource(ctx.identity.account_uid, name))
    return _attached(ctx, "Role", name)


@api_action(version=VERSION, name="AttachPolicyToUser", mutating=True)
def attach_policy_to_user(ctx: ApiContext) -> dict:
    name = user_name_param(ctx)
    _attach(ctx, "User", name, user_resource(ctx.identity.account_uid, name))
    return {}


@api_action(version=VERSION, name="DetachPolicyFromUser", mutating=True)
def detach_policy_from_user(ctx: ApiContext) -> dict:
    name = user_name_param(ctx)
    _detach(ctx, "User", name, user_resource(ctx.identity.account_uid, name))
    return {}


@api_action(version=VERSION, name="ListPoliciesForUser")
def list_policies_for_user(ctx: ApiContext) -> dict:
    name = user_name_param(ctx)
    ctx.authorize("ram:ListPoliciesForUser", user_resource(ctx.identity.account_uid, name))
    return _attached(ctx, "User", name)


# --- policies ----------------------------------------------------------------------------------


@api_action(version=VERSION, name="CreatePolicy", mutating=True)
def create_policy(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    name = policy_name_param(ctx)
    document = policy_document_param(ctx)
    description = description_param(ctx, "Description") or ""
    ctx.authorize("ram:CreatePolicy", policy_resource(uid, name))
    with ctx.store.write() as tx:
        if tx.policy_get(uid, "Custom", name) is not None or tx.policy_get(uid, "System", name):
            raise ApiError("EntityAlreadyExists.Policy", "The policy already exists.", 409)
        if tx.policy_count(uid) >= MAX_CUSTOM_POLICIES_PER_ACCOUNT:
            raise ApiError(
                "LimitExceeded.Policy",
                f"The count of custom policies exceeds the limit of "
                f"{MAX_CUSTOM_POLICIES_PER_ACCOUNT}.",
                409,
            )
        try:
            created = tx.policy_create(
                account_uid=uid,
                policy_type="Custom",
                name=name,
                document=document,
                description=description,
            )
        except StoreError:
            raise ApiError(
                "EntityAlreadyExists.Policy", "The policy already exists.", 409
            ) from None
    ctx.log_extra["resource"] = policy_resource(uid, name)
    body = policy_json(created)
    del body["UpdateDate"]
    return {"Policy": body}


@api_action(version=VERSION, name="GetPolicy")
def get_policy(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    policy_type = policy_type_param(ctx)
    name = policy_name_param(ctx)
    ctx.authorize("ram:GetPolicy", policy_resource(uid, name))
    with ctx.store.read() as tx:
        found = _policy(tx, uid, policy_type, name)  # type: ignore[arg-type]
        document = tx.policy_default_document(uid, found.policy_type, found.name) or ""
        versions = {v.version_id: v for v in tx.policy_versions(uid, found.policy_type, found.name)}
        count = tx.attachment_count_for_policy(uid, found.policy_type, found.name)
    default = versions.get(found.default_version)
    body = policy_json(found, attachment_count=count)
    body["PolicyDocument"] = document
    return {
        "Policy": body,
        "DefaultPolicyVersion": {
            "VersionId": found.default_version,
            "IsDefaultVersion": True,
            "PolicyDocument": document,
            "CreateDate": default.created_at if default else found.created_at,
        },
    }


@api_action(version=VERSION, name="DeletePolicy", mutating=True)
def delete_policy(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    name = policy_name_param(ctx)
    cascade = ctx.bool_param("CascadingDelete", False)
    ctx.authorize("ram:DeletePolicy", policy_resource(uid, name))
    with ctx.store.write() as tx:
        found = _policy(tx, uid, "Custom", name)
        if cascade:
            tx.attachments_remove_policy(account_uid=uid, policy_type="Custom", name=found.name)
        else:
            kinds = tx.attachment_principal_types_for_policy(uid, "Custom", found.name)
            if kinds:
                kind = "User" if "User" in kinds else kinds[0]
                raise ApiError(
                    f"DeleteConflict.Policy.{kind}",
                    f"The policy CAN NOT be deleted while it is attached to a {kind.lower()}.",
                    409,
                )
            if len(tx.policy_versions(uid, "Custom", found.name)) > 1:
                raise ApiError(
                    "DeleteConflict.Policy.Version",
                    "The policy CAN NOT be deleted while it has non-default versions.",
                    409,
                )
        tx.policy_delete(account_uid=uid, policy_type="Custom", name=found.name)
    ctx.log_extra["resource"] = policy_resource(uid, name)
    return {}


@api_action(version=VERSION, name="ListPolicies")
def list_policies(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    policy_type = policy_type_param(ctx, required=False)
    max_items = max_items_param(ctx)
    after = seq_marker(ctx)
    ctx.authorize("ram:ListPolicies", policy_resource(uid, "*"))
    with ctx.store.read() as tx:
        page = tx.policy_list(uid, policy_type=policy_type, after_seq=after, limit=max_items + 1)
        truncated = len(page) > max_items
        page = page[:max_items]
        items = [
            policy_json(
                item,
                attachment_count=tx.attachment_count_for_policy(uid, item.policy_type, item.name),
            )
            for _, item in page
        ]
    body: dict = {"IsTruncated": truncated, "Policies": {"Policy": items}}
    if truncated:
        body["Marker"] = encode_marker(str(page[-1][0]))
    return body


def _version_json(version_id: str, document: str, created_at: str, default: str) -> dict:
    return {
        "VersionId": version_id,
        "IsDefaultVersion": version_id == default,
        "PolicyDocument": document,
        "CreateDate": created_at,
    }


@api_action(version=VERSION, name="CreatePolicyVersion", mutating=True)
def create_policy_version(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    name = policy_name_param(ctx)
    document = policy_document_param(ctx)
    set_default = ctx.bool_param("SetAsDefault", False)
    rotate = ctx.param("RotateStrategy", "None")
    if rotate not in ("None", ROTATE_OLDEST):
        raise ApiError(
            "InvalidParameter.RotateStrategy",
            f"The parameter RotateStrategy must be None or {ROTATE_OLDEST}.",
            400,
        )
    ctx.authorize("ram:CreatePolicyVersion", policy_resource(uid, name))
    with ctx.store.write() as tx:
        found = _policy(tx, uid, "Custom", name)
        versions = tx.policy_versions(uid, "Custom", found.name)
        if len(versions) >= MAX_POLICY_VERSIONS:
            if rotate != ROTATE_OLDEST:
                raise ApiError(
                    "LimitExceeded.Policy.Version",
                    f"The count of versions of the policy exceeds the limit of "
                    f"{MAX_POLICY_VERSIONS}.",
                    409,
                )
            oldest = next(v for v in versions if v.version_id != found.default_version)
            tx.policy_version_delete(account_uid=uid, name=found.name, version_id=oldest.version_id)
        version = tx.policy_version_add(
            account_uid=uid, name=found.name, document=document, set_as_default=bool(set_default)
        )
        default = version.version_id if set_default else found.default_version
    ctx.log_extra["resource"] = policy_resource(uid, name)
    return {
        "PolicyVersion": _version_json(
            version.version_id, version.document, version.created_at, default
        )
    }


@api_action(version=VERSION, name="ListPolicyVersions")
def list_policy_versions(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    policy_type = policy_type_param(ctx)
    name = policy_name_param(ctx)
    ctx.authorize("ram:ListPolicyVersions", policy_resource(uid, name))
    with ctx.store.read() as tx:
        found = _policy(tx, uid, policy_type, name)  # type: ignore[arg-type]
        versions = tx.policy_versions(uid, found.policy_type, found.name)
    return {
        "PolicyVersions": {
            "PolicyVersion": [
                _version_json(v.version_id, v.document, v.created_at, found.default_version)
                for v in versions
            ]
        }
    }


@api_action(version=VERSION, name="DeletePolicyVersion", mutating=True)
def delete_policy_version(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    name = policy_name_param(ctx)
    version_id = version_id_param(ctx)
    ctx.authorize("ram:DeletePolicyVersion", policy_resource(uid, name))
    with ctx.store.write() as tx:
        found = _policy(tx, uid, "Custom", name)
        versions = {v.version_id for v in tx.policy_versions(uid, "Custom", found.name)}
        if version_id not in versions:
            raise ApiError(
                "EntityNotExist.Policy.Version",
                f"The policy version does not exist: {name} {version_id}.",
                404,
            )
        if version_id == found.default_version:
            # [UNVERIFIED] code: RAM refuses to delete the default version; the code is ours.
            raise ApiError(
                "DeleteConflict.Policy.Version.Default",
                "The default version of a policy CAN NOT be deleted.",
                409,
            )
        tx.policy_version_delete(account_uid=uid, name=found.name, version_id=version_id)
    ctx.log_extra["resource"] = policy_resource(uid, name)
    return {}


# --- users -------------------------------------------------------------------------------------


def _optional_text(ctx: ApiContext, param: str, max_length: int) -> str | None:
    value = ctx.params.get(param)
    if value is None:
        return None
    if len(value) > max_length:
        raise ApiError(
            f"InvalidParameter.{param}.Length",
            f"The parameter {param} must be at most {max_length} characters long.",
            400,
        )
    return value


EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^[0-9]{1,4}-[0-9]{4,15}$")


@api_action(version=VERSION, name="CreateUser", mutating=True)
def create_user(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    name = user_name_param(ctx)
    display_name = _optional_text(ctx, "DisplayName", 128)
    comments = _optional_text(ctx, "Comments", 128) or ""
    email = ctx.param("Email")
    if email is not None and not EMAIL_RE.match(email):
        raise ApiError("InvalidParameter.Email.Format", "The parameter Email is not valid.", 400)
    phone = ctx.param("MobilePhone")
    if phone is not None and not PHONE_RE.match(phone):
        raise ApiError(
            "InvalidParameter.MobilePhone.Format",
            "The parameter MobilePhone must look like <country code>-<number>.",
            400,
        )
    ctx.authorize("ram:CreateUser", user_resource(uid, name))
    with ctx.store.write() as tx:
        if tx.user_get(uid, name) is not None:
            raise ApiError("EntityAlreadyExists.User", "The user already exists.", 409)
        if tx.user_count(uid) >= MAX_USERS_PER_ACCOUNT:
            raise ApiError(
                "LimitExceeded.User",
                f"The count of users exceeds the limit of {MAX_USERS_PER_ACCOUNT}.",
                409,
            )
        user = tx.user_create(
            account_uid=uid,
            name=name,
            display_name=display_name or name,
            email=email or "",
            mobile_phone=phone or "",
            comments=comments,
        )
    ctx.log_extra["resource"] = user.arn
    body = user_json(user, full=False)
    del body["UpdateDate"]
    return {"User": body}


@api_action(version=VERSION, name="GetUser")
def get_user(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    name = user_name_param(ctx)
    ctx.authorize("ram:GetUser", user_resource(uid, name))
    with ctx.store.read() as tx:
        user = _user(tx, uid, name)
    return {"User": user_json(user)}


@api_action(version=VERSION, name="ListUsers")
def list_users(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    max_items = max_items_param(ctx)
    after = decode_marker(ctx) or ""
    ctx.authorize("ram:ListUsers", user_resource(uid, "*"))
    with ctx.store.read() as tx:
        page = tx.user_list(uid, after_key=after, limit=max_items + 1)
    truncated = len(page) > max_items
    page = page[:max_items]
    body: dict = {
        "IsTruncated": truncated,
        "Users": {"User": [user_json(user, full=False) for user in page]},
    }
    if truncated:
        body["Marker"] = encode_marker(page[-1].name.lower())
    return body


@api_action(version=VERSION, name="DeleteUser", mutating=True)
def delete_user(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    name = user_name_param(ctx)
    ctx.authorize("ram:DeleteUser", user_resource(uid, name))
    with ctx.store.write() as tx:
        user = _user(tx, uid, name)
        if tx.attachment_list(uid, "User", user.name):
            raise ApiError(
                "DeleteConflict.User.Policy",
                "The user CAN NOT have any attached policy while being deleted.",
                409,
            )
        if tx.access_key_list(uid, user.name):
            raise ApiError(
                "DeleteConflict.User.AccessKey",
                "The user CAN NOT have any AccessKey while being deleted.",
                409,
            )
        tx.user_delete(account_uid=uid, name=user.name)
    ctx.log_extra["resource"] = user.arn
    return {}


# --- AccessKeys ----------------------------------------------------------------------------------


def _key_owner(ctx: ApiContext, tx: Tx) -> str | None:
    """The user an AccessKey call is about: UserName, else the caller (None = root)."""
    uid = ctx.identity.account_uid
    if ctx.param("UserName") is not None:
        return _user(tx, uid, user_name_param(ctx)).name
    if ctx.identity.is_root:
        return None
    if ctx.identity.user_name:
        return ctx.identity.user_name
    raise ApiError(
        "MissingParameter",
        'The input parameter "UserName" that is mandatory for processing this request is not '
        "supplied.",
        400,
    )


def _key_resource(ctx: ApiContext) -> str:
    uid = ctx.identity.account_uid
    if ctx.param("UserName") is not None:
        return user_resource(uid, user_name_param(ctx))
    if ctx.identity.user_name:
        return user_resource(uid, ctx.identity.user_name)
    return f"acs:ram:*:{uid}:root"


def _owned_key(tx: Tx, uid: str, owner: str | None, key_id: str) -> AccessKey:
    """The AccessKey ``key_id`` if it belongs to ``owner`` (None = root) in this account."""
    key = tx.access_key_get(key_id)
    if (
        key is None
        or key.account_uid != uid
        or (key.user_name or "").lower() != (owner or "").lower()
    ):
        raise ApiError("EntityNotExist.User.AccessKey", "The AccessKey does not exist.", 404)
    return key


@api_action(version=VERSION, name="CreateAccessKey", mutating=True)
def create_access_key(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    ctx.authorize("ram:CreateAccessKey", _key_resource(ctx))
    with ctx.store.write() as tx:
        owner = _key_owner(ctx, tx)
        if len(tx.access_key_list(uid, owner)) >= MAX_ACCESS_KEYS_PER_USER:
            raise ApiError(
                "LimitExceeded.User.AccessKey",
                f"The count of AccessKeys exceeds the limit of {MAX_ACCESS_KEYS_PER_USER}.",
                409,
            )
        key = tx.access_key_create(account_uid=uid, user_name=owner)
    ctx.log_extra["resource"] = _key_resource(ctx)
    return {
        "AccessKey": {
            "AccessKeyId": key.access_key_id,
            "AccessKeySecret": key.secret,
            "Status": key.status,
            "CreateDate": key.created_at,
        }
    }


@api_action(version=VERSION, name="ListAccessKeys")
def list_access_keys(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    ctx.authorize("ram:ListAccessKeys", _key_resource(ctx))
    with ctx.store.read() as tx:
        owner = _key_owner(ctx, tx)
        keys = tx.access_key_list(uid, owner)
    return {
        "AccessKeys": {
            "AccessKey": [
                {"AccessKeyId": k.access_key_id, "Status": k.status, "CreateDate": k.created_at}
                for k in keys
            ]
        }
    }


@api_action(version=VERSION, name="DeleteAccessKey", mutating=True)
def delete_access_key(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    key_id = ctx.require("UserAccessKeyId")
    ctx.authorize("ram:DeleteAccessKey", _key_resource(ctx))
    with ctx.store.write() as tx:
        owner = _key_owner(ctx, tx)
        _owned_key(tx, uid, owner, key_id)
        tx.access_key_delete(key_id)
    ctx.log_extra["resource"] = _key_resource(ctx)
    return {}


# --- account alias -----------------------------------------------------------------------------


@api_action(version=VERSION, name="GetAccountAlias")
def get_account_alias(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    ctx.authorize("ram:GetAccountAlias", f"acs:ram:*:{uid}:*")
    with ctx.store.read() as tx:
        account = tx.account_get(uid)
    return {"AccountAlias": account.alias if account else ""}


@api_action(version=VERSION, name="SetAccountAlias", mutating=True)
def set_account_alias(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    alias = ctx.require("AccountAlias")
    if not 3 <= len(alias) <= 32:
        raise ApiError(
            "InvalidParameter.AccountAlias.Length",
            "The parameter AccountAlias must be 3 to 32 characters long.",
            400,
        )
    if not ALIAS_RE.match(alias):
        raise ApiError(
            "InvalidParameter.AccountAlias.InvalidChars",
            "The parameter AccountAlias may contain lower-case letters, digits and hyphens, "
            "and must not start or end with a hyphen.",
            400,
        )
    ctx.authorize("ram:SetAccountAlias", f"acs:ram:*:{uid}:*")
    with ctx.store.write() as tx:
        try:
            tx.account_set_alias(uid=uid, alias=alias)
        except StoreError:
            raise ApiError(
                "EntityAlreadyExists.AccountAlias", "The account alias is already used.", 409
            ) from None
    return {}


@api_action(version=VERSION, name="UpdateAccessKey", mutating=True)
def update_access_key(ctx: ApiContext) -> dict:
    """Activate or deactivate an AccessKey (Status Active | Inactive)."""
    uid = ctx.identity.account_uid
    key_id = ctx.require("UserAccessKeyId")
    status = ctx.require("Status")
    if status not in ("Active", "Inactive"):
        raise ApiError(
            "InvalidParameter.Status", "The parameter Status must be Active or Inactive.", 400
        )
    ctx.authorize("ram:UpdateAccessKey", _key_resource(ctx))
    with ctx.store.write() as tx:
        owner = _key_owner(ctx, tx)
        _owned_key(tx, uid, owner, key_id)
        tx.access_key_set_status(access_key_id=key_id, status=status)
    ctx.log_extra["resource"] = _key_resource(ctx)
    return {}
