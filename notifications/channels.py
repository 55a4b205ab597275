"""Each chat service's real message format and how it says "received": one `build_request`
and one `judge_response` per channel kind, pure functions over a notice.

A notice is the dict `notifications.services.Notice.as_content()` stores: `event`, `title`,
`summary`, `facts` (label, value pairs), `link` (absolute, to the page that acts on it) and
`organisation` (the name of the organisation it is addressed to).
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from notifications import signing
from notifications.models import Channel

Kind = Channel.Kind

# DingTalk 130101 and WeCom 45009: sending too fast (20 messages a minute per robot).
_THROTTLED_CODES = {130101, 45009}


@dataclass(frozen=True)
class OutgoingRequest:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    error: str = ""
    retry_after: float | None = None
    # Trying again cannot help (the hook is gone, the address is refused).
    permanent: bool = False


def _markdown(notice: dict[str, Any], *, heading: bool = True) -> str:
    lines = [f"### {notice['title']}", ""] if heading else []
    lines.append(str(notice.get("summary", "")))
    lines.append("")
    for label, value in notice.get("facts", []):
        lines.append(f"- **{label}**: {value}")
    lines += ["", f"[{_('Open in the portal')}]({notice['link']})"]
    return "\n".join(lines)


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _dingtalk(url: str, secret: str, notice: dict[str, Any]) -> OutgoingRequest:
    payload = {
        "msgtype": "markdown",
        "markdown": {"title": notice["title"], "text": _markdown(notice)},
    }
    if secret:
        timestamp_ms = int(time.time() * 1000)
        sign = signing.dingtalk_sign(secret=secret, timestamp_ms=timestamp_ms)
        url = f"{url}{'&' if '?' in url else '?'}timestamp={timestamp_ms}&sign={sign}"
    return OutgoingRequest(url=url, body=_json(payload))


def _lark(url: str, secret: str, notice: dict[str, Any]) -> OutgoingRequest:
    payload: dict[str, Any] = {
        "msg_type": "interactive",
        "card": {
            "header": {"title": {"tag": "plain_text", "content": notice["title"]}},
            "elements": [
                {"tag": "div", "text": {"tag": "lark_md", "content": _markdown(notice)}},
                {
                    "tag": "action",
                    "actions": [
                        {
                            "tag": "button",
                            "text": {"tag": "plain_text", "content": _("Open in the portal")},
                            "url": notice["link"],
                            "type": "primary",
                        }
                    ],
                },
            ],
        },
    }
    if secret:
        timestamp_s = int(time.time())
        payload = {
            "timestamp": str(timestamp_s),
            "sign": signing.lark_sign(secret=secret, timestamp_s=timestamp_s),
            **payload,
        }
    return OutgoingRequest(url=url, body=_json(payload))


def _wecom(url: str, secret: str, notice: dict[str, Any]) -> OutgoingRequest:
    return OutgoingRequest(
        url=url, body=_json({"msgtype": "markdown", "markdown": {"content": _markdown(notice)}})
    )


def _slack(url: str, secret: str, notice: dict[str, Any]) -> OutgoingRequest:
    facts = "\n".join(f"*{label}*: {value}" for label, value in notice.get("facts", []))
    payload = {
        "text": f"{notice['title']}: {notice.get('summary', '')}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": notice["title"][:150]}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{notice.get('summary', '')}\n{facts}"},
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": _("Open in the portal")},
                        "url": notice["link"],
                    }
                ],
            },
        ],
    }
    return OutgoingRequest(url=url, body=_json(payload))


def _webhook(
    url: str, secret: str, notice: dict[str, Any], *, delivery_key: str
) -> OutgoingRequest:
    timestamp = int(time.time())
    body = _json(
        {
            "id": delivery_key,
            "event": notice["event"],
            "timestamp": timestamp,
            "organisation": notice.get("organisation", ""),
            "title": notice["title"],
            "summary": notice.get("summary", ""),
            "facts": dict(notice.get("facts", [])),
            "url": notice["link"],
        }
    )
    headers = {
        signing.TIMESTAMP_HEADER: str(timestamp),
        signing.EVENT_HEADER: notice["event"],
        signing.DELIVERY_HEADER: delivery_key,
    }
    if secret:
        headers[signing.SIGNATURE_HEADER] = signing.webhook_signature(secret=secret, body=body)
    return OutgoingRequest(url=url, body=body, headers=headers)


def build_request(
    *, kind: str, url: str, secret: str, notice: dict[str, Any], delivery_key: str
) -> OutgoingRequest:
    if kind == Kind.DINGTALK:
        request = _dingtalk(url, secret, notice)
    elif kind == Kind.LARK:
        request = _lark(url, secret, notice)
    elif kind == Kind.WECOM:
        request = _wecom(url, secret, notice)
    elif kind == Kind.SLACK:
        request = _slack(url, secret, notice)
    else:
        request = _webhook(url, secret, notice, delivery_key=delivery_key)
    headers = {"Content-Type": "application/json; charset=utf-8", **request.headers}
    return OutgoingRequest(url=request.url, body=request.body, headers=headers)


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _body_code(text: str, *names: str) -> int | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for name in names:
        if isinstance(data.get(name), int):
            return int(data[name])
    return None


def judge_response(*, kind: str, status: int, text: str, retry_after: str | None = None) -> Verdict:
    """Whether the service took the message; a refusal says why, and when to try again."""
    if status == 429:
        return Verdict(
            False, f"HTTP 429 ({_('too many messages')})", retry_after_seconds(retry_after)
        )
    if not 200 <= status < 300:
        gone = status in (400, 401, 403, 404, 410)
        return Verdict(False, f"HTTP {status}", retry_after_seconds(retry_after), permanent=gone)
    if kind in (Kind.DINGTALK, Kind.WECOM):
        code = _body_code(text, "errcode")
        if code == 0:
            return Verdict(True)
        wait = 60.0 if code in _THROTTLED_CODES else None
        return Verdict(False, f"errcode {code}", wait)
    if kind == Kind.LARK:
        code = _body_code(text, "code", "StatusCode")
        return Verdict(True) if code == 0 else Verdict(False, f"code {code}")
    if kind == Kind.SLACK:
        return Verdict(True) if text.strip() == "ok" else Verdict(False, text.strip()[:100])
    return Verdict(True)
