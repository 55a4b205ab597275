"""Each person's language and time zone (issue 17): the header switcher, the profile, the
browser's zone at first sign-in, and times shown in the person's zone with UTC on hover."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.test import Client
from django.utils import timezone, translation

from accounts.models import User
from accounts.services import person_time_zone_default
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

INSTANT = datetime(2026, 12, 6, 1, 38, 45, tzinfo=UTC)


def _render(source: str, **context: object) -> str:
    return Template("{% load portal_time %}" + source).render(Context(context))


def test_when_shows_the_active_zone_with_the_utc_instant_on_hover() -> None:
    with timezone.override(ZoneInfo("Asia/Shanghai")):
        html = _render("{{ t|when }}", t=INSTANT)
    assert html == (
        '<time datetime="2026-12-06T01:38:45Z" title="2026-12-06 01:38:45 UTC">'
        "6 Dec 2026, 09:38</time>"
    )


def test_when_styles_and_raw_formats_and_empty_values() -> None:
    with timezone.override(ZoneInfo("America/New_York")):
        assert ">5 Dec 2026<" in _render('{{ t|when:"date" }}', t=INSTANT)
        assert ">5 Dec 2026, 20:38:45<" in _render('{{ t|when:"seconds" }}', t=INSTANT)
        assert ">2026-12-05 20:38<" in _render('{{ t|when:"Y-m-d H:i" }}', t=INSTANT)
        assert _render("{{ t|when }}", t=None) == ""
        assert _render("{{ t|when_text }}", t=INSTANT) == "5 Dec 2026, 20:38 (America/New_York)"


def test_when_writes_dates_the_chinese_way_under_zh_hans() -> None:
    with timezone.override(ZoneInfo("Asia/Shanghai")), translation.override("zh-hans"):
        assert ">2026年12月6日 09:38<" in _render("{{ t|when }}", t=INSTANT)
        assert ">2026年12月6日<" in _render('{{ t|when:"date" }}', t=INSTANT)


def test_when_escapes_nothing_it_should_not() -> None:
    # A string (not a time) is shown as text, escaped by the template like any value.
    assert _render("{{ t|when }}", t="<b>") == "&lt;b&gt;"


def test_anonymous_choice_is_remembered_in_the_browser_cookie() -> None:
    client = Client()
    response = client.post(
        "/i18n/setlang/", {"language": "zh-hans"}, headers={"referer": "/accounts/login/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert response.cookies["portal_language"].value == "zh-hans"
    page = client.get("/accounts/login/")
    assert page["Content-Language"] == "zh-hans"
    assert '<html lang="zh-hans">' in page.content.decode()


def test_accept_language_decides_without_a_choice() -> None:
    page = Client(headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.5"}).get("/")
    assert page["Content-Language"] == "zh-hans"
    page = Client(headers={"accept-language": "de-DE"}).get("/")
    assert page["Content-Language"] == "en"


def test_the_switcher_is_on_anonymous_pages_without_inline_script() -> None:
    body = Client().get("/accounts/login/").content.decode()
    assert 'data-testid="language-switcher"' in body
    assert 'name="language" value="zh-hans"' in body
    assert "<script>" not in body


def test_a_signed_in_persons_choice_goes_to_their_profile_and_wins(
    partner_staff: User, login: object
) -> None:
    client = login(partner_staff)  # type: ignore[operator]
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    partner_staff.refresh_from_db()
    assert partner_staff.language == "zh-hans"
    # Another browser of the same person, asking for English: the profile wins.
    other = login(partner_staff, client=Client(headers={"accept-language": "en"}))  # type: ignore[operator]
    assert other.get("/")["Content-Language"] == "zh-hans"


def test_preferences_page_changes_language_and_time_zone(
    partner_staff: User, login: object
) -> None:
    client = login(partner_staff)  # type: ignore[operator]
    page = client.get("/preferences/")
    assert page.status_code == 200
    assert 'data-testid="preferences-form"' in page.content.decode()
    response = client.post("/preferences/", {"language": "zh-hans", "time_zone": "Asia/Shanghai"})
    assert response.status_code == 302
    assert response.cookies["portal_language"].value == "zh-hans"
    partner_staff.refresh_from_db()
    assert (partner_staff.language, partner_staff.time_zone) == ("zh-hans", "Asia/Shanghai")
    page = client.get("/preferences/")
    assert page["Content-Language"] == "zh-hans"
    assert "Asia/Shanghai" in page.content.decode()


def test_preferences_refuse_an_unknown_time_zone(partner_staff: User, login: object) -> None:
    client = login(partner_staff)  # type: ignore[operator]
    response = client.post("/preferences/", {"language": "", "time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 400
    partner_staff.refresh_from_db()
    assert partner_staff.time_zone == ""


def test_preferences_need_a_signed_in_person_and_no_get_writes() -> None:
    assert Client().get("/preferences/").status_code == 302
    assert Client().put("/preferences/").status_code in (302, 405)


def test_auditor_may_change_their_own_preferences(auditor: User, login: object) -> None:
    client = login(auditor)  # type: ignore[operator]
    response = client.post("/preferences/", {"language": "en", "time_zone": "Europe/Berlin"})
    assert response.status_code == 302
    assert client.post("/i18n/setlang/", {"language": "zh-hans"}).status_code == 302
    auditor.refresh_from_db()
    assert (auditor.language, auditor.time_zone) == ("zh-hans", "Europe/Berlin")


def test_first_sign_in_takes_the_browsers_time_zone(auditor: User) -> None:
    client = Client()
    response = client.post(
        "/accounts/login/",
        {"login": auditor.email, "password": DEFAULT_PASSWORD, "time_zone": "Asia/Shanghai"},
    )
    assert response.status_code == 302
    auditor.refresh_from_db()
    assert auditor.time_zone == "Asia/Shanghai"


def test_the_login_form_carries_the_time_zone_field_and_its_static_script() -> None:
    body = Client().get("/accounts/login/").content.decode()
    assert 'name="time_zone"' in body and "data-browser-time-zone" in body
    assert "js/time-zone.js" in body


def test_a_known_or_bogus_time_zone_is_never_overwritten(auditor: User) -> None:
    assert not person_time_zone_default(user=auditor, browser_time_zone="Not/AZone")
    assert not person_time_zone_default(user=auditor, browser_time_zone="x" * 500)
    assert person_time_zone_default(user=auditor, browser_time_zone="Europe/Paris")
    assert not person_time_zone_default(user=auditor, browser_time_zone="Asia/Tokyo")
    auditor.refresh_from_db()
    assert auditor.time_zone == "Europe/Paris"


def test_pages_show_times_in_the_persons_zone(
    owner_admin: User, login: object, company_a: object
) -> None:
    User.objects.filter(pk=owner_admin.pk).update(time_zone="Asia/Shanghai")
    client = login(owner_admin)  # type: ignore[operator]
    body = client.get("/organisation/members/").content.decode()
    joined = owner_admin.memberships.get().created_at
    created = timezone.localtime(joined, ZoneInfo("Asia/Shanghai"))
    assert f">{created.day} {created:%b %Y}<" in body
    assert 'title="' in body and ' UTC">' in body


def test_sign_up_takes_the_browsers_zone_and_the_language_chosen_on_the_page() -> None:
    from tests.accounts.test_signup import signup_data

    client = Client()
    client.post("/i18n/setlang/", {"language": "zh-hans"})
    response = client.post("/accounts/signup/", signup_data(time_zone="Asia/Shanghai"))
    assert response.status_code == 302
    person = User.objects.get(email="bea@bramble.example")
    assert (person.language, person.time_zone) == ("zh-hans", "Asia/Shanghai")
    # Its confirmation email is in Chinese: the person it is for chose Chinese.
    from django.core import mail

    assert mail.outbox[-1].subject.startswith("[合作伙伴访问门户]")
