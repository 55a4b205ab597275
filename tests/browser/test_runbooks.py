"""Runbooks in Chromium, against cloudsim through the official SDKs: partner staff start
`echo hello` over two owner accounts x cn-shanghai and cn-beijing and watch it finish with every
running instance's output; and the variant where the owner requires approval per run, an owner
admin approves (step-up), and only then does OOS run anything.

The worker's tasks run through the real task functions, drained by the test while the browser
is on a page that does not poll: on the in-memory test database a worker thread would share the
live server's one connection. Screenshots land in `test-artifacts/browser/<test>/`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from accounts.models import Membership, User
from runbooks import dispatch, tasks
from runbooks.models import RunbookRun
from tests.cloudsim.oos_scenario import REGIONS, Scenario
from tests.personas import make_member, mark_reauthenticated
from tests.runbooks.conftest import capture_publishes
from tests.runbooks.test_end_to_end import World

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TASKS = {
    dispatch.SUBMIT_RUN: tasks.submit_run,
    dispatch.FOLLOW_RUN: tasks.follow_run,
    dispatch.CANCEL_RUN: tasks.cancel_run,
    dispatch.ENSURE_OOS_ROLE: tasks.ensure_oos_service_role,
}


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    return capture_publishes(monkeypatch)


@pytest.fixture
def world(cloudsim, settings, published) -> World:
    for name in ("RAM", "STS", "OOS", "ECS"):
        setattr(settings, f"ALIBABA_{name}_ENDPOINT", cloudsim.endpoint)
    settings.ALIBABA_CLOUD_PROTOCOL = "http"
    settings.PORTAL_RUNBOOK_REGIONS = list(REGIONS)
    settings.PORTAL_RUNBOOK_POLL_SECONDS = 0.2
    settings.PORTAL_REQUIRE_MFA = False
    world = World(Scenario(cloudsim))
    world.consent()
    published.clear()
    return world


def drain(published: list[tuple[str, str]], timeout: float = 60.0) -> None:
    """Run what the portal handed to the worker, the follow task's re-queues included."""
    deadline = time.monotonic() + timeout
    while published:
        assert time.monotonic() < deadline, published
        name, object_id = published.pop(0)
        if name == dispatch.FOLLOW_RUN:
            time.sleep(django_settings.PORTAL_RUNBOOK_POLL_SECONDS)
        TASKS[name](object_id)


def open_as(new_browser_context: Callable[..., Any], live_server: Any, user: User) -> Any:
    client = Client()
    client.force_login(user)
    mark_reauthenticated(client, user)  # a recent sign-in: the approval's step-up passes
    context = new_browser_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )
    return context.new_page()


def start_echo_hello(page: Any, shot: Callable[[Any, str], Any]) -> None:
    from playwright.sync_api import expect

    page.goto("/runbooks/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Runbooks")
    shot(page, "runbooks")
    page.get_by_test_id("new-run").click()
    form = page.get_by_test_id("run-form")
    boxes = form.locator("input[name=targets]")
    expect(boxes).to_have_count(4)  # two owner accounts x two regions
    for index in range(4):
        boxes.nth(index).check()
    form.get_by_label("Title").fill("hello fleet")
    form.get_by_label("Command", exact=True).fill("echo hello")
    form.get_by_label("Concurrency").fill("10")
    form.get_by_label("MaxErrors").fill("0")
    shot(page, "new-run")
    page.get_by_test_id("start-run").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("hello fleet")


def see_it_finish(page: Any, world: World, shot: Callable[[Any, str], Any]) -> None:
    from playwright.sync_api import expect

    run = RunbookRun.objects.get()
    page.goto(f"/runbooks/{run.pk}/")
    expect(page.get_by_test_id("run-status")).to_have_text("Succeeded")
    expect(page.get_by_test_id("execution-id")).to_have_text(re.compile(r"\S+"))
    running = sum(len(owner.running()) for owner in world.scenario.owners)
    outputs = page.get_by_test_id("instance-output")
    expect(outputs).to_have_count(running)
    for index in range(running):
        expect(outputs.nth(index)).to_have_text(re.compile(r"^\s*hello\s*$"))
    shot(page, "finished")


def test_partner_staff_run_echo_hello_over_the_fleet_and_watch_it_finish(
    world, published, new_browser_context, live_server, shot
):
    from playwright.sync_api import expect

    page = open_as(new_browser_context, live_server, world.staff)
    start_echo_hello(page, shot)
    expect(page.get_by_test_id("run-status")).to_have_text(re.compile("Queued|Starting"))
    shot(page, "queued")
    page.goto("/runbooks/")  # a page that does not poll while the worker runs
    drain(published)
    see_it_finish(page, world, shot)
    # The export is the exact template and parameters of the run.
    with page.expect_download() as download:
        page.get_by_test_id("export-parameters").click()
    assert "echo hello" in download.value.path().read_text()


def test_the_owner_requires_approval_and_nothing_runs_before_it(
    world, published, new_browser_context, live_server, shot
):
    from playwright.sync_api import expect

    grant = world.grants[0]
    owner_admin = make_member(grant.owner, Membership.Role.ADMIN, mfa=False)
    owner = open_as(new_browser_context, live_server, owner_admin)
    owner.goto("/runbooks/")
    owner.locator(f'tr[data-grant="{grant.pk}"]').get_by_test_id("requirement-on").click()
    expect(owner.locator(f'tr[data-grant="{grant.pk}"]')).to_contain_text("Yes")
    shot(owner, "owner-requires-approval")

    staff = open_as(new_browser_context, live_server, world.staff)
    start_echo_hello(staff, shot)
    expect(staff.get_by_test_id("run-status")).to_have_text("Waiting for approval")
    shot(staff, "waiting-for-approval")
    assert published == []  # nothing went to the worker, nothing to OOS

    run = RunbookRun.objects.get()
    owner.goto("/runbooks/")
    expect(owner.get_by_test_id("runs-waiting")).to_contain_text("hello fleet")
    owner.goto(f"/runbooks/{run.pk}/")
    expect(owner.get_by_test_id("command")).to_have_text("echo hello")
    shot(owner, "owner-reviews-run")
    owner.get_by_test_id("approve-run").click()
    expect(owner.get_by_test_id("approvals")).to_contain_text("Approved")
    owner.goto("/runbooks/")
    drain(published)
    see_it_finish(staff, world, shot)
    owner.goto(f"/runbooks/{run.pk}/")
    expect(owner.get_by_test_id("run-status")).to_have_text("Succeeded")
    shot(owner, "owner-sees-result")


def test_each_owner_sees_only_its_own_instance_ids_of_a_run_over_two_owners(
    world, published, new_browser_context, live_server, shot
):
    from playwright.sync_api import expect

    world.connect_ram_user()  # the instance check assumes the owner roles with this key
    mine, theirs = world.scenario.owners
    my_instance, their_instance = mine.running()[0][1], theirs.running()[0][1]
    run = world.start(target_type="ResourceIds", instance_ids=[their_instance, my_instance])
    drain(published)

    staff = open_as(new_browser_context, live_server, world.staff)
    staff.goto(f"/runbooks/{run.pk}/")
    expect(staff.get_by_test_id("run-status")).to_have_text("Succeeded")
    expect(staff.get_by_test_id("instance-ids")).to_have_text(f"{their_instance}, {my_instance}")
    shot(staff, "partner-sees-every-instance")

    my_admin = make_member(world.grants[0].owner, Membership.Role.ADMIN, mfa=False)
    owner = open_as(new_browser_context, live_server, my_admin)
    owner.goto(f"/runbooks/{run.pk}/")
    expect(owner.get_by_test_id("run-status")).to_have_text("Succeeded")
    expect(owner.get_by_test_id("instance-ids")).to_have_text(my_instance)
    body = owner.locator("body")
    expect(body).not_to_contain_text(their_instance)
    expect(body).not_to_contain_text(theirs.uid)
    shot(owner, "owner-sees-its-own-instance")
