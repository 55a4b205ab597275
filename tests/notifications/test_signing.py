"""The signatures match the chat services' published algorithms (known answers worked out by
hand from the documentation's formulas) and the generic webhook's receivers can verify it."""

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, quote_plus, urlsplit

from notifications import channels, signing

SECRET = "SECdemo0123456789"
NOTICE = {
    "event": "delegation.requested",
    "title": "Company B requests ecs-admin",
    "summary": "Review it and decide.",
    "facts": [["Role", "ecs-admin"]],
    "link": "http://portal.example/delegations/1/",
    "organisation": "Company A",
}


def test_dingtalk_sign_is_the_published_algorithm() -> None:
    # sign = urlencode(base64(HmacSHA256(key=secret, "timestamp\nsecret")))
    assert (
        signing.dingtalk_sign(secret=SECRET, timestamp_ms=1700000000000)
        == "ww0uYz9hgC%2F%2Fla1LzHCxhiH8ja6t5XU0VlJXBRQKVAA%3D"
    )
    by_hand = hmac.new(SECRET.encode(), b"1700000000000\n" + SECRET.encode(), hashlib.sha256)
    assert signing.dingtalk_sign(secret=SECRET, timestamp_ms=1700000000000) == quote_plus(
        base64.b64encode(by_hand.digest()).decode()
    )


def test_lark_sign_is_the_published_algorithm() -> None:
    # sign = base64(HmacSHA256(key="timestamp\nsecret", message=""))
    assert (
        signing.lark_sign(secret=SECRET, timestamp_s=1700000000)
        == "OwVY1o4jtY+KrWyBDuR3eNKZbwzYJawAd+W7mUYesSU="
    )


def test_generic_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"a":1}'
    header = signing.webhook_signature(secret=SECRET, body=body)
    assert header == "sha256=cdbe53760c63b7cddeb2620afd8f177d8f0d9c6b317262359f54e60dd2feba2f"
    assert signing.webhook_signature_valid(secret=SECRET, body=body, header=header)
    assert not signing.webhook_signature_valid(secret=SECRET, body=b'{"a":2}', header=header)
    assert not signing.webhook_signature_valid(secret="other-secret", body=body, header=header)


def test_dingtalk_request_is_markdown_and_signed_in_the_url() -> None:
    request = channels.build_request(
        kind="dingtalk",
        url="https://oapi.dingtalk.com/robot/send?access_token=abc",
        secret=SECRET,
        notice=NOTICE,
        delivery_key="d1",
    )
    payload = json.loads(request.body)
    assert payload["msgtype"] == "markdown"
    assert payload["markdown"]["title"] == NOTICE["title"]
    assert NOTICE["link"] in payload["markdown"]["text"]
    query = parse_qs(urlsplit(request.url).query)
    assert query["access_token"] == ["abc"]
    timestamp = int(query["timestamp"][0])
    assert quote_plus(query["sign"][0]) == signing.dingtalk_sign(
        secret=SECRET, timestamp_ms=timestamp
    )


def test_lark_request_is_an_interactive_card_signed_in_the_body() -> None:
    request = channels.build_request(
        kind="lark",
        url="https://open.feishu.cn/hook/x",
        secret=SECRET,
        notice=NOTICE,
        delivery_key="d",
    )
    payload = json.loads(request.body)
    assert payload["msg_type"] == "interactive"
    assert payload["card"]["header"]["title"]["content"] == NOTICE["title"]
    assert payload["sign"] == signing.lark_sign(
        secret=SECRET, timestamp_s=int(payload["timestamp"])
    )


def test_wecom_and_slack_formats() -> None:
    wecom = json.loads(
        channels.build_request(
            kind="wecom",
            url="https://qyapi.weixin.qq.com/x",
            secret="",
            notice=NOTICE,
            delivery_key="d",
        ).body
    )
    assert wecom["msgtype"] == "markdown" and NOTICE["link"] in wecom["markdown"]["content"]
    slack = json.loads(
        channels.build_request(
            kind="slack",
            url="https://hooks.slack.com/x",
            secret="",
            notice=NOTICE,
            delivery_key="d",
        ).body
    )
    assert slack["text"].startswith(NOTICE["title"])
    assert slack["blocks"][-1]["elements"][0]["url"] == NOTICE["link"]


def test_generic_webhook_carries_signature_timestamp_and_delivery_headers() -> None:
    request = channels.build_request(
        kind="webhook",
        url="https://hooks.example.com/x",
        secret=SECRET,
        notice=NOTICE,
        delivery_key="d9",
    )
    body = json.loads(request.body)
    assert request.headers[signing.TIMESTAMP_HEADER] == str(body["timestamp"])
    assert request.headers[signing.DELIVERY_HEADER] == "d9"
    assert signing.webhook_signature_valid(
        secret=SECRET, body=request.body, header=request.headers[signing.SIGNATURE_HEADER]
    )


def test_responses_are_judged_as_each_service_says() -> None:
    judge = channels.judge_response
    assert judge(kind="dingtalk", status=200, text='{"errcode":0,"errmsg":"ok"}').ok
    refused = judge(kind="dingtalk", status=200, text='{"errcode":310000,"errmsg":"sign"}')
    assert not refused.ok and not refused.permanent and "310000" in refused.error
    assert judge(kind="dingtalk", status=200, text='{"errcode":130101}').retry_after == 60.0
    assert judge(kind="lark", status=200, text='{"code":0}').ok
    assert not judge(kind="lark", status=200, text='{"code":19021}').ok
    assert judge(kind="slack", status=200, text="ok").ok
    throttled = judge(kind="slack", status=429, text="", retry_after="7")
    assert not throttled.ok and throttled.retry_after == 7.0 and not throttled.permanent
    assert judge(kind="webhook", status=404, text="").permanent
    assert not judge(kind="webhook", status=503, text="").permanent
