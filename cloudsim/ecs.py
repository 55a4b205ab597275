# ruff: noqa: RUF001 - the Chinese region names use full-width parentheses, as Alibaba writes them
"""ECS 2014-05-26: regions, instances and their power state, authorised at every call.

The API handlers at the bottom are thin: the console (``cloudsim.console``) calls the same
plain functions with a role session's identity, so a button in the browser and an SDK call are
checked by exactly the same code.

Emulation choices ([UNVERIFIED] where Alibaba documents nothing):

- Every instance lives in one account and one region; an instance of another account is
  reported as ``InvalidInstanceId.NotFound`` (404), exactly like a missing one.
- Permission is checked *before* the instance's state, on ``acs:ecs:<region>:<uid>:instance/<id>``
  for one instance and ``acs:ecs:<region>:<uid>:instance/*`` for DescribeInstances; a denial is
  ECS's own ``Forbidden.RAM`` (403).
- Power transitions take ``CLOUDSIM_ECS_TRANSITION_SECONDS`` (default 2) seconds: StopInstance
  moves Running → Stopping → Stopped, StartInstance Stopped → Starting → Running, and
  RebootInstance Running → Starting → Running. The intermediate state settles lazily when the
  instance is next read or changed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from cloudsim import authz
from cloudsim.api import ApiContext, api_action
from cloudsim.errors import ApiError, invalid_parameter
from cloudsim.identity import Identity
from cloudsim.policy import wildcard_match
from cloudsim.store import EcsInstance, Store

VERSION = "2014-05-26"
DEFAULT_TRANSITION_SECONDS = 2.0
MAX_INSTANCE_IDS = 100
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100

RUNNING, STOPPED, STARTING, STOPPING, PENDING = (
    "Running",
    "Stopped",
    "Starting",
    "Stopping",
    "Pending",
)
STATUSES = (PENDING, RUNNING, STARTING, STOPPING, STOPPED)
_SETTLES_TO = {STARTING: RUNNING, STOPPING: STOPPED, PENDING: RUNNING}


@dataclass(frozen=True)
class Region:
    region_id: str
    name_zh: str
    name_en: str


# The public regions of ECS (DescribeRegions, 2025), with their console names.
REGIONS: tuple[Region, ...] = (
    Region("cn-qingdao", "华北1（青岛）", "China (Qingdao)"),
    Region("cn-beijing", "华北2（北京）", "China (Beijing)"),
    Region("cn-zhangjiakou", "华北3（张家口）", "China (Zhangjiakou)"),
    Region("cn-huhehaote", "华北5（呼和浩特）", "China (Hohhot)"),
    Region("cn-wulanchabu", "华北6（乌兰察布）", "China (Ulanqab)"),
    Region("cn-hangzhou", "华东1（杭州）", "China (Hangzhou)"),
    Region("cn-shanghai", "华东2（上海）", "China (Shanghai)"),
    Region("cn-nanjing", "华东5（南京-本地地域）", "China (Nanjing - Local Region)"),
    Region("cn-shenzhen", "华南1（深圳）", "China (Shenzhen)"),
    Region("cn-heyuan", "华南2（河源）", "China (Heyuan)"),
    Region("cn-guangzhou", "华南3（广州）", "China (Guangzhou)"),
    Region("cn-chengdu", "西南1（成都）", "China (Chengdu)"),
    Region("cn-hongkong", "中国香港", "China (Hong Kong)"),
    Region("ap-northeast-1", "日本（东京）", "Japan (Tokyo)"),
    Region("ap-northeast-2", "韩国（首尔）", "South Korea (Seoul)"),
    Region("ap-southeast-1", "新加坡", "Singapore"),
    Region("ap-southeast-3", "马来西亚（吉隆坡）", "Malaysia (Kuala Lumpur)"),
    Region("ap-southeast-5", "印度尼西亚（雅加达）", "Indonesia (Jakarta)"),
    Region("ap-southeast-6", "菲律宾（马尼拉）", "Philippines (Manila)"),
    Region("ap-southeast-7", "泰国（曼谷）", "Thailand (Bangkok)"),
    Region("us-east-1", "美国（弗吉尼亚）", "US (Virginia)"),
    Region("us-west-1", "美国（硅谷）", "US (Silicon Valley)"),
    Region("eu-west-1", "英国（伦敦）", "UK (London)"),
    Region("eu-central-1", "德国（法兰克福）", "Germany (Frankfurt)"),
    Region("me-east-1", "阿联酋（迪拜）", "UAE (Dubai)"),
)
_REGIONS_BY_ID = {region.region_id: region for region in REGIONS}


# --- errors ----------------------------------------------------------------------------------


def _not_found() -> ApiError:
    return ApiError("InvalidInstanceId.NotFound", "The specified InstanceId does not exist.", 404)


def _incorrect_status() -> ApiError:
    return ApiError(
        "IncorrectInstanceStatus",
        "The current status of the resource does not support this operation.",
        403,
    )


class PermissionDenied(ApiError):
    """ECS's ``Forbidden.RAM``, remembering what was denied so the console can say so."""

    def __init__(
        self, action: str, resource: str, access_denied_detail: dict[str, str] | None = None
    ) -> None:
        super().__init__(
            "Forbidden.RAM",
            "User not authorized to operate on the specified resource, or this API doesn't "
            f"support RAM. Action: {action} Resource: {resource}",
            403,
            access_denied_detail=access_denied_detail,
        )
        self.action = action
        self.resource = resource


def _dry_run_passed() -> ApiError:
    return ApiError(
        "DryRunOperation", "Request validation has been passed with DryRun flag set.", 400
    )


def _unknown_region(region_id: str) -> ApiError:
    # [UNVERIFIED] status: ECS documents the code and message, not the HTTP status.
    return ApiError(
        "InvalidRegionId.NotFound", f"The specified RegionId does not exist: {region_id}.", 404
    )


# --- state -----------------------------------------------------------------------------------


def transition_seconds() -> float:
    """How long Starting/Stopping last; read per call so tests and demos can tune it."""
    try:
        return max(0.0, float(os.environ.get("CLOUDSIM_ECS_TRANSITION_SECONDS", "")))
    except ValueError:
        return DEFAULT_TRANSITION_SECONDS


def effective_status(instance: EcsInstance, *, now: float | None = None) -> str:
    """The status an observer sees now: a finished transition has settled."""
    settled = _SETTLES_TO.get(instance.status)
    if settled is None:
        return instance.status
    elapsed = (time.time() if now is None else now) - instance.status_changed_at
    return settled if elapsed >= transition_seconds() else instance.status


def instance_arn(instance: EcsInstance) -> str:
    return f"acs:ecs:{instance.region_id}:{instance.account_uid}:instance/{instance.instance_id}"


def region_instances_arn(*, region_id: str, account_uid: str) -> str:
    return f"acs:ecs:{region_id}:{account_uid}:instance/*"


def _authorize(
    *,
    store: Store,
    identity: Identity,
    action: str,
    resource: str,
    source_ip: str,
    secure_transport: bool,
) -> None:
    try:
        authz.authorize(
            store=store,
            identity=identity,
            action=action,
            resource=resource,
            source_ip=source_ip,
            secure_transport=secure_transport,
        )
    except ApiError as error:
        if error.code == "NoPermission":
            raise PermissionDenied(action, resource, error.access_denied_detail) from None
        raise


def require_region(region_id: str) -> Region:
    region = _REGIONS_BY_ID.get(region_id)
    if region is None:
        raise _unknown_region(region_id)
    return region


# --- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceFilter:
    instance_ids: tuple[str, ...] | None = None
    status: str | None = None
    zone_id: str | None = None
    instance_name: str | None = None  # "*" wildcards, as ECS allows
    instance_type: str | None = None

    def admits(self, instance: EcsInstance, status: str) -> bool:
        if self.instance_ids is not None and instance.instance_id not in self.instance_ids:
            return False
        if self.status is not None and status != self.status:
            return False
        if self.zone_id is not None and instance.zone_id != self.zone_id:
            return False
        if self.instance_type is not None and instance.instance_type != self.instance_type:
            return False
        if self.instance_name is None:
            return True
        # ECS names filter with "*" only; "?" is an ordinary character there, so it is mapped to
        # a character that is not a policy wildcard on both sides before matching.
        return wildcard_match(
            self.instance_name.replace("?", "\0"), instance.instance_name.replace("?", "\0")
        )


def describe_instances(
    *,
    store: Store,
    identity: Identity,
    region_id: str,
    source_ip: str,
    secure_transport: bool = False,
    where: InstanceFilter | None = None,
) -> list[tuple[EcsInstance, str]]:
    """The caller's account's instances in one region as (instance, effective status)."""
    require_region(region_id)
    _authorize(
        store=store,
        identity=identity,
        action="ecs:DescribeInstances",
        resource=region_instances_arn(region_id=region_id, account_uid=identity.account_uid),
        source_ip=source_ip,
        secure_transport=secure_transport,
    )
    where = where or InstanceFilter()
    with store.read() as tx:
        instances = tx.ecs_instance_list(identity.account_uid, region_id=region_id)
    now = time.time()
    found = []
    for instance in instances:
        status = effective_status(instance, now=now)
        if where.admits(instance, status):
            found.append((instance, status))
    return found


def account_regions_in_use(*, store: Store, account_uid: str) -> list[str]:
    """Regions where the account has instances, in REGIONS order (for the console)."""
    with store.read() as tx:
        used = {instance.region_id for instance in tx.ecs_instance_list(account_uid)}
    return [region.region_id for region in REGIONS if region.region_id in used]


# --- power operations ------------------------------------------------------------------------

START, STOP, REBOOT = "StartInstance", "StopInstance", "RebootInstance"
POWER_TRANSITIONS = {
    # operation: (status it requires, status it moves to)
    START: (STOPPED, STARTING),
    STOP: (RUNNING, STOPPING),
    REBOOT: (RUNNING, STARTING),
}


def change_power_state(
    *,
    store: Store,
    identity: Identity,
    instance_id: str,
    operation: str,
    source_ip: str,
    secure_transport: bool = False,
    dry_run: bool = False,
) -> EcsInstance:
    """Start, stop or reboot one instance; returns it as it is after the change.

    Raises ``InvalidInstanceId.NotFound`` (404), ``Forbidden.RAM`` (403),
    ``IncorrectInstanceStatus`` (403) or, with ``dry_run`` and every check passed,
    ``DryRunOperation`` (400), as ECS does.
    """
    required, target = POWER_TRANSITIONS[operation]
    with store.read() as tx:
        instance = tx.ecs_instance_get(instance_id)
    if instance is None or instance.account_uid != identity.account_uid:
        raise _not_found()
    _authorize(
        store=store,
        identity=identity,
        action=f"ecs:{operation}",
        resource=instance_arn(instance),
        source_ip=source_ip,
        secure_transport=secure_transport,
    )
    with store.write() as tx:
        # Re-read under the write lock: two clicks racing must not both pass the state check.
        current = tx.ecs_instance_get(instance_id)
        if current is None:
            raise _not_found()
        if effective_status(current) != required:
            raise _incorrect_status()
        if dry_run:
            raise _dry_run_passed()
        tx.ecs_instance_set_status(instance_id=instance_id, status=target)
        return tx.ecs_instance_get(instance_id)  # type: ignore[return-value]


# --- response shapes -------------------------------------------------------------------------


def _short_id(prefix: str, *parts: str, length: int = 20) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{prefix}-{digest[:length]}"


def _ecs_time(text: str) -> str:
    """ECS reports instance times to the minute: ``2017-12-10T04:04Z``."""
    return text[:16] + "Z" if len(text) >= 16 else text


def _ecs_time_from_epoch(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%MZ")


def instance_body(instance: EcsInstance, status: str) -> dict:
    """One ``Instances.Instance[]`` element, shaped like the official SDK's model."""
    attributes = instance.attributes or {}
    vpc_id = _short_id("vpc", instance.account_uid, instance.region_id)
    private_ips = [instance.private_ip] if instance.private_ip else []
    family = ".".join(instance.instance_type.split(".")[:2])
    tags = attributes.get("Tags") or []
    return {
        "InstanceId": instance.instance_id,
        "InstanceName": instance.instance_name,
        "Description": attributes.get("Description", ""),
        "HostName": attributes.get("HostName", f"iZ{instance.instance_id[2:]}Z"),
        "RegionId": instance.region_id,
        "ZoneId": instance.zone_id,
        "Status": status,
        "InstanceType": instance.instance_type,
        "InstanceTypeFamily": family,
        "Cpu": instance.cpu,
        "Memory": instance.memory,
        "OSName": instance.os_name,
        "OSNameEn": instance.os_name,
        "OSType": "windows" if "windows" in instance.os_name.lower() else "linux",
        "ImageId": instance.image_id,
        "CreationTime": _ecs_time(instance.created_at),
        "StartTime": _ecs_time_from_epoch(instance.status_changed_at),
        "ExpiredTime": "2099-12-31T15:59Z",
        "InstanceChargeType": "PostPaid",
        "InternetChargeType": "PayByTraffic",
        "InternetMaxBandwidthIn": -1,
        "InternetMaxBandwidthOut": 0,
        "InstanceNetworkType": "vpc",
        "IoOptimized": True,
        "DeletionProtection": False,
        "Recyclable": False,
        "SpotStrategy": "NoSpot",
        "StoppedMode": "KeepCharging" if status == STOPPED else "Not-applicable",
        "SerialNumber": str(uuid.uuid5(uuid.NAMESPACE_URL, instance.instance_id)),
        "ResourceGroupId": "",
        "DeviceAvailable": True,
        "VpcAttributes": {
            "VpcId": vpc_id,
            "VSwitchId": _short_id("vsw", instance.account_uid, instance.zone_id),
            "PrivateIpAddress": {"IpAddress": private_ips},
            "NatIpAddress": "",
        },
        "InnerIpAddress": {"IpAddress": []},
        "PublicIpAddress": {"IpAddress": []},
        "EipAddress": {"AllocationId": "", "IpAddress": "", "InternetChargeType": ""},
        "SecurityGroupIds": {"SecurityGroupId": [_short_id("sg", vpc_id)]},
        "NetworkInterfaces": {
            "NetworkInterface": [
                {
                    "NetworkInterfaceId": _short_id("eni", instance.instance_id),
                    "PrimaryIpAddress": instance.private_ip,
                    "MacAddress": ":".join(
                        ["00", "16", "3e"]
                        + [_short_id("m", instance.instance_id)[2 + i : 4 + i] for i in (0, 2, 4)]
                    ),
                    "Type": "Primary",
                }
            ]
        },
        "OperationLocks": {"LockReason": []},
        "Tags": {"Tag": [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tags]},
    }


def region_body(region: Region, *, language: str) -> dict:
    return {
        "RegionId": region.region_id,
        "LocalName": region.name_zh if language == "zh-CN" else region.name_en,
        "RegionEndpoint": f"ecs.{region.region_id}.aliyuncs.com",
        "Status": "available",
    }


# --- API handlers ----------------------------------------------------------------------------


def _json_id_list(ctx: ApiContext, name: str) -> tuple[str, ...] | None:
    raw = ctx.param(name)
    if raw is None:
        return None
    try:
        values = json.loads(raw)
    except ValueError:
        values = None
    if (
        not isinstance(values, list)
        or len(values) > MAX_INSTANCE_IDS
        or not all(isinstance(v, str) and v for v in values)
    ):
        raise ApiError(
            f"Invalid{name}.Malformed",
            f"The specified parameter {name} is not valid: it must be a JSON array of up to "
            f"{MAX_INSTANCE_IDS} strings.",
            400,
        )
    return tuple(values)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        label, _, number = text.partition(":")
        offset = int(number)
    except (ValueError, UnicodeError):
        raise invalid_parameter("NextToken", "The token is not one this API returned.") from None
    if label != "offset" or offset < 0:
        raise invalid_parameter("NextToken", "The token is not one this API returned.")
    return offset


@api_action(version=VERSION, name="DescribeRegions")
def describe_regions(ctx: ApiContext) -> dict:
    _authorize(
        store=ctx.store,
        identity=ctx.identity,
        action="ecs:DescribeRegions",
        resource=f"acs:ecs:*:{ctx.identity.account_uid}:*",
        source_ip=ctx.source_ip,
        secure_transport=ctx.secure_transport,
    )
    language = ctx.param("AcceptLanguage", "zh-CN")
    return {"Regions": {"Region": [region_body(r, language=language) for r in REGIONS]}}


@api_action(version=VERSION, name="DescribeInstances")
def describe_instances_action(ctx: ApiContext) -> dict:
    region_id = ctx.require("RegionId")
    status = ctx.param("Status")
    if status is not None and status not in STATUSES:
        raise invalid_parameter("Status", f"Valid values: {', '.join(STATUSES)}.")
    where = InstanceFilter(
        instance_ids=_json_id_list(ctx, "InstanceIds"),
        status=status,
        zone_id=ctx.param("ZoneId"),
        instance_name=ctx.param("InstanceName"),
        instance_type=ctx.param("InstanceType"),
    )
    found = describe_instances(
        store=ctx.store,
        identity=ctx.identity,
        region_id=region_id,
        source_ip=ctx.source_ip,
        secure_transport=ctx.secure_transport,
        where=where,
    )
    ctx.log_extra["resource"] = region_instances_arn(
        region_id=region_id, account_uid=ctx.identity.account_uid
    )
    body: dict = {"TotalCount": len(found)}
    next_token = ctx.param("NextToken")
    max_results = ctx.param("MaxResults")
    if next_token is not None or max_results is not None:
        # Token paging; out-of-range MaxResults is clamped, as the SDK docstring says.
        limit = ctx.int_param("MaxResults", DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE
        limit = min(max(limit, DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        offset = _decode_token(next_token) if next_token else 0
        page = found[offset : offset + limit]
        more = offset + limit < len(found)
        body["NextToken"] = _encode_token(offset + limit) if more else ""
    else:
        page_number = ctx.int_param("PageNumber", 1, minimum=1, maximum=10**9)
        page_size = ctx.int_param("PageSize", DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
        assert page_number is not None and page_size is not None
        start = (page_number - 1) * page_size
        page = found[start : start + page_size]
        body.update(PageNumber=page_number, PageSize=page_size, NextToken="")
    body["Instances"] = {"Instance": [instance_body(i, s) for i, s in page]}
    return body


def _power_action(ctx: ApiContext, operation: str) -> dict:
    instance = change_power_state(
        store=ctx.store,
        identity=ctx.identity,
        instance_id=ctx.require("InstanceId"),
        operation=operation,
        source_ip=ctx.source_ip,
        secure_transport=ctx.secure_transport,
        dry_run=bool(ctx.bool_param("DryRun", False)),
    )
    ctx.log_extra["resource"] = instance_arn(instance)
    return {}


@api_action(version=VERSION, name=START, mutating=True)
def start_instance(ctx: ApiContext) -> dict:
    return _power_action(ctx, START)


@api_action(version=VERSION, name=STOP, mutating=True)
def stop_instance(ctx: ApiContext) -> dict:
    return _power_action(ctx, STOP)


@api_action(version=VERSION, name=REBOOT, mutating=True)
def reboot_instance(ctx: ApiContext) -> dict:
    return _power_action(ctx, REBOOT)
