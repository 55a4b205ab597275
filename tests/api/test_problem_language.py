"""Problem documents speak the request's language (Accept-Language; a browser session's
person's choice) while `type`, `status` and the machine-readable members stay the same
(issue 17)."""

from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import User
from delegations.models import PartnerLink
from tests.api.test_api import DELEGATIONS, problem

pytestmark = pytest.mark.django_db

ZH = {"Accept-Language": "zh-hans"}
EN = {"Accept-Language": "en"}


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_a_scope_problem_in_chinese_keeps_its_type_and_members(
    api: Callable, make_token: Callable, partner_admin: User, link_a: tuple[PartnerLink, str]
) -> None:
    client = api(make_token(partner_admin, scopes=("read",)))
    body = {"partner_link_code": link_a[1]}
    english = problem(client.post(DELEGATIONS, body, **EN), 403, "insufficient-scope")
    chinese = problem(client.post(DELEGATIONS, body, **ZH), 403, "insufficient-scope")
    assert english["title"] == "Insufficient scope"
    assert chinese["title"] == "权限范围不足"
    assert english["detail"] == "This needs a token with the 'request' scope."
    assert _has_chinese(chinese["detail"]) and "request" in chinese["detail"]
    assert chinese["type"] == english["type"] == "/api/v1/problems/insufficient-scope"
    assert chinese["required_scope"] == english["required_scope"] == "request"


def test_anonymous_and_unknown_path_problems_follow_accept_language() -> None:
    client = Client()
    unknown = client.get("/api/v1/no-such-thing/", headers=ZH)
    body = problem(unknown, 404, "not-found")
    assert body["title"] == "未找到" and _has_chinese(body["detail"])
    assert "/api/v1/docs/" in body["detail"]
    anonymous = problem(client.get(DELEGATIONS, headers=ZH), 401, "unauthenticated")
    assert anonymous["title"] == "未认证"
    assert problem(client.get(DELEGATIONS, headers=EN), 401, "unauthenticated")["title"] == (
        "Not authenticated"
    )


def test_the_problem_type_page_is_translated_but_its_type_is_not() -> None:
    client = Client()
    chinese = client.get("/api/v1/problems/rate-limited", headers=ZH).json()
    english = client.get("/api/v1/problems/rate-limited", headers=EN).json()
    assert chinese["type"] == english["type"] == "/api/v1/problems/rate-limited"
    assert english["title"] == "Too many requests" and chinese["title"] == "请求过多"
    assert _has_chinese(chinese["description"]) and "Retry-After" in chinese["description"]
