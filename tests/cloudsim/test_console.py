"""The console's pages over plain HTTP: sign-in, CSRF, escaping, switch-role decisions.

The browser walk-through of the same flow is in ``test_console_browser.py``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pytest
import requests
from alibabacloud_ram20150501 import models as ram

from tests.cloudsim.conftest import Account, Sdk, trust_policy

PASSWORD = "Correct-Horse-7"


@dataclass
class Browser:
    """A requests session that keeps cookies and never follows redirects on its own."""

    base: str
    http: requests.Session

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=10, **kwargs)

    def post(self, path: str, data: dict, **kwargs) -> requests.Response:
        return self.http.post(
            self.base + path, data=data, allow_redirects=False, timeout=10, **kwargs
        )

    def csrf(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        return csrf_of(page.text)

    def sign_in(self, logon_name: str, password: str = PASSWORD, **extra) -> requests.Response:
        token = self.csrf("/login.htm")
        form = {"csrf": token, "logon_name": logon_name, "password": password, **extra}
        return self.post("/login.htm", form)


def csrf_of(text: str) -> str:
    match = re.search(r"name='csrf' value='([^']+)'", text)
    assert match, text
    return match.group(1)


@pytest.fixture
def browser(cloudsim) -> Browser:
    http = requests.Session()
    http.trust_env = False  # never a proxy for loopback
    return Browser(cloudsim.url, http)


@dataclass
class Partners:
    owner: Account
    partner: Account
    alice_name: str


@pytest.fixture
def partners(cloudsim, new_account) -> Partners:
    """Owner A with a role trusting partner B; B's user may assume roles; a password is set."""
    owner, partner = new_account(), new_account()
    cloudsim.create_user(partner.uid, "Alice", PASSWORD)
    sdk = Sdk(cloudsim)
    sdk.create_role(owner, "ecs-admin", trust_policy(partner.root_arn))
    sdk.attach_to_user(partner, "Alice", "AliyunSTSAssumeRoleAccess")
    return Partners(owner, partner, f"Alice@{partner.alias}.onaliyun.com")


# --- sign-in ---------------------------------------------------------------------------------


def test_pages_need_a_sign_in_and_come_back_after_it(browser, partners):
    page = browser.get("/switchRole.htm?parentAlias=company-a&roleName=ecs-admin")
    assert page.status_code == 303
    assert page.headers["Location"] == (
        "/login.htm?next=%2FswitchRole.htm%3FparentAlias%3Dcompany-a%26roleName%3Decs-admin"
    )
    login = browser.get(page.headers["Location"])
    assert "RAM User Logon" in login.text
    token = csrf_of(login.text)
    next_value = re.search(r"name='next' value='([^']+)'", login.text).group(1)
    signed_in = browser.post(
        "/login.htm",
        {
            "csrf": token,
            "next": html.unescape(next_value),
            "logon_name": partners.alice_name,
            "password": PASSWORD,
        },
    )
    assert signed_in.status_code == 303
    assert (
        signed_in.headers["Location"] == "/switchRole.htm?parentAlias=company-a&roleName=ecs-admin"
    )
    cookie = signed_in.headers["Set-Cookie"]
    assert "cloudsim_console=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    form = browser.get(signed_in.headers["Location"])
    assert "value='company-a'" in form.text and "value='ecs-admin'" in form.text


@pytest.mark.parametrize("style", ["alias-domain", "uid-domain", "two-fields", "uid-field"])
def test_every_logon_name_style_signs_in(browser, partners, style):
    partner = partners.partner
    logon, extra = {
        "alias-domain": (f"alice@{partner.alias}.onaliyun.com", {}),
        "uid-domain": (f"Alice@{partner.uid}.onaliyun.com", {}),
        "two-fields": ("Alice", {"account": partner.alias}),
        "uid-field": ("Alice", {"account": partner.uid}),
    }[style]
    response = browser.sign_in(logon, **extra)
    assert (response.status_code, response.headers["Location"]) == (303, "/console")
    home = browser.get("/console")
    assert home.status_code == 200
    assert f"<strong>Alice</strong> @ {partner.alias}" in home.text


@pytest.mark.parametrize(
    ("logon", "password"),
    [
        ("Alice@{alias}.onaliyun.com", "wrong"),
        ("Nobody@{alias}.onaliyun.com", PASSWORD),
        ("Alice@no-such-company.onaliyun.com", PASSWORD),
    ],
)
def test_failed_sign_ins_all_say_the_same(browser, partners, logon, password):
    response = browser.sign_in(logon.format(alias=partners.partner.alias), password)
    assert response.status_code == 401
    assert "The logon name or password is incorrect." in response.text
    assert "cloudsim_console=" not in response.headers.get("Set-Cookie", "")


def test_a_user_without_a_console_password_cannot_sign_in(browser, cloudsim, new_account):
    account = new_account()
    cloudsim.create_user(account.uid, "api-only", None)
    response = browser.sign_in(f"api-only@{account.alias}.onaliyun.com", "")
    assert response.status_code == 401


def test_sign_in_needs_the_forms_csrf_token(browser, partners):
    browser.csrf("/login.htm")
    forged = browser.post(
        "/login.htm", {"csrf": "forged", "logon_name": partners.alice_name, "password": PASSWORD}
    )
    assert forged.status_code == 403
    assert "form expired" in forged.text
    incomplete = browser.post("/login.htm", {"csrf": csrf_of(forged.text), "logon_name": "x"})
    assert incomplete.status_code == 400


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil", "x"])
def test_sign_in_never_redirects_off_site(browser, partners, target):
    response = browser.sign_in(partners.alice_name, next=target)
    assert response.headers["Location"] == "/console"


def test_sign_out_ends_the_session(browser, partners):
    browser.sign_in(partners.alice_name)
    home = browser.get("/console")
    forged = browser.post("/logout.htm", {"csrf": "nope"})
    assert forged.status_code == 403
    out = browser.post("/logout.htm", {"csrf": csrf_of(home.text)})
    assert (out.status_code, out.headers["Location"]) == (303, "/login.htm")
    assert browser.get("/console").status_code == 303


def test_wrong_methods_are_refused(browser):
    assert browser.http.put(browser.base + "/switchRole.htm", timeout=10).status_code == 405
    assert browser.http.delete(browser.base + "/console", timeout=10).status_code == 405
    assert browser.get("/console/ecs/power").status_code == 405


# --- switch role -----------------------------------------------------------------------------


def switch(browser: Browser, parent_alias: str, role_name: str) -> requests.Response:
    token = browser.csrf("/switchRole.htm")
    return browser.post(
        "/switchRole.htm", {"csrf": token, "parentAlias": parent_alias, "roleName": role_name}
    )


@pytest.mark.parametrize("style", ["alias", "alias-domain", "uid", "uid-domain"])
def test_switching_roles_names_both_identities(browser, cloudsim, partners, style):
    owner = partners.owner
    parent = {
        "alias": owner.alias,
        "alias-domain": f"{owner.alias}.onaliyun.com",
        "uid": owner.uid,
        "uid-domain": f"{owner.uid}.onaliyun.com",
    }[style]
    browser.sign_in(partners.alice_name)
    since = cloudsim.last_call_seq()
    response = switch(browser, parent, "ecs-admin")
    assert (response.status_code, response.headers["Location"]) == (303, "/console")
    home = browser.get("/console")
    expected = f"Alice @ {partners.partner.alias} as ecs-admin @ {owner.alias}"
    assert expected in re.sub(r"<[^>]+>", "", home.text)
    assert f"acs:ram::{owner.uid}:role/ecs-admin/Alice" in home.text
    # The owner account has no instances and the role no ECS permission: a clear denial.
    assert "You are not authorized to do this action. Action: ecs:DescribeInstances." in home.text
    logged = [c for c in cloudsim.calls(since) if c.get("via") == "console"]
    assert [(c["action"], c["outcome"]) for c in logged] == [("AssumeRole", "success")]
    assert logged[0]["caller_arn"] == f"acs:ram::{partners.partner.uid}:user/Alice"

    back = browser.post("/console/switchRole/back", {"csrf": csrf_of(home.text)})
    assert back.status_code == 303
    again = re.sub(r"<[^>]+>", "", browser.get("/console").text)
    assert "back to your own identity" in again
    assert f"Alice @ {partners.partner.alias} as" not in again


def test_switching_fails_exactly_when_assume_role_would(browser, cloudsim, partners):
    sdk = Sdk(cloudsim)
    owner, partner = partners.owner, partners.partner
    browser.sign_in(partners.alice_name)

    missing_account = switch(browser, "no-such-company", "ecs-admin")
    assert missing_account.status_code == 404
    assert "No account is called no-such-company." in missing_account.text

    missing_role = switch(browser, owner.alias, "no-such-role")
    assert missing_role.status_code == 404
    assert "does not exist. (EntityNotExist.Role)" in missing_role.text

    bad_name = switch(browser, owner.alias, "not a role!")
    assert bad_name.status_code == 400 and "InvalidParameter.RoleArn" in bad_name.text

    # The trust policy no longer names B: refused, with the reason spelled out.
    sdk.ram(owner).update_role(
        ram.UpdateRoleRequest(
            role_name="ecs-admin",
            new_assume_role_policy_document=trust_policy("acs:ram::99999999:root"),
        )
    )
    untrusted = switch(browser, owner.alias, "ecs-admin")
    assert untrusted.status_code == 403
    text = html.unescape(untrusted.text)
    assert "You cannot switch to this role: You are not authorized to do this action." in text
    assert f"sts:AssumeRole on acs:ram::{owner.uid}:role/ecs-admin" in text
    # The form keeps what was typed.
    assert f"value='{owner.alias}'" in untrusted.text

    # Trusted again, but Alice's own policies no longer allow sts:AssumeRole.
    sdk.ram(owner).update_role(
        ram.UpdateRoleRequest(
            role_name="ecs-admin",
            new_assume_role_policy_document=trust_policy(f"acs:ram::{partner.uid}:user/Alice"),
        )
    )
    assert switch(browser, owner.alias, "ecs-admin").status_code == 303
    sdk.ram(partner).detach_policy_from_user(
        ram.DetachPolicyFromUserRequest(
            policy_type="System", policy_name="AliyunSTSAssumeRoleAccess", user_name="Alice"
        )
    )
    assert switch(browser, owner.alias, "ecs-admin").status_code == 403


def test_switch_role_forms_need_the_session_csrf_token(browser, partners):
    browser.sign_in(partners.alice_name)
    forged = browser.post(
        "/switchRole.htm",
        {"csrf": "forged", "parentAlias": partners.owner.alias, "roleName": "ecs-admin"},
    )
    assert forged.status_code == 403
    assert browser.post("/console/switchRole/back", {}).status_code == 403
    assert browser.post("/console/ecs/power", {"csrf": "x"}).status_code == 403
    assert "as ecs-admin" not in browser.get("/console").text


def test_everything_written_into_pages_is_escaped(browser, partners):
    browser.sign_in(partners.alice_name)
    hostile = "\"'><script>alert(1)</script>"
    page = browser.get(
        "/switchRole.htm", params={"parentAlias": hostile, "roleName": "<img src=x onerror=1>"}
    )
    assert "<script>alert(1)</script>" not in page.text
    assert "&quot;&#x27;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;img src=x onerror=1&gt;" in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    refused = switch(browser, hostile, "ecs-admin")
    assert "<script>" not in refused.text


def test_console_power_buttons_check_their_input(browser, cloudsim, partners):
    browser.sign_in(partners.alice_name)
    token = csrf_of(browser.get("/console").text)
    for form in (
        {"csrf": token, "operation": "DeleteInstance", "instance_id": "i-1"},
        {"csrf": token, "operation": "StopInstance", "instance_id": ""},
    ):
        assert browser.post("/console/ecs/power", form).status_code == 303
        assert "Choose an instance and an operation." in browser.get("/console").text
    since = cloudsim.last_call_seq()
    browser.post(
        "/console/ecs/power", {"csrf": token, "operation": "StopInstance", "instance_id": "i-x"}
    )
    assert "The specified InstanceId does not exist." in browser.get("/console").text
    logged = [c for c in cloudsim.calls(since) if c.get("via") == "console"]
    assert [(c["action"], c["error_code"]) for c in logged] == [
        ("StopInstance", "InvalidInstanceId.NotFound")
    ]
