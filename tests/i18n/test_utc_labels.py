"""A time on a page is either in the reader's zone (`|when`, UTC on hover, table headers name
the zone) or deliberately in UTC (`|utc`, which writes "UTC" itself): never a time shown in the
reader's zone with a hand-written "UTC" after it (issue 17)."""

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from django.conf import settings
from django.template import Context, Template
from django.template.loader import render_to_string
from django.utils import timezone, translation

INSTANT = datetime(2026, 12, 6, 1, 38, 45, tzinfo=UTC)
TEMPLATES = Path(settings.BASE_DIR) / "templates"
# Calls per day are counted by ActionTrail's UTC day (activity.storage.count_daily): the
# header says so, as the only place a page names UTC in its own words.
STATED_UTC = {"Day (UTC)"}


def test_utc_filter_states_the_utc_instant_whatever_the_readers_zone() -> None:
    source = '{% load portal_time %}{{ t|utc }} · {{ t|utc:"Y-m-d H:i:s.u" }} · {{ none|utc }}'
    with timezone.override(ZoneInfo("Asia/Shanghai")):
        html = Template(source).render(Context({"t": INSTANT, "none": None}))
    assert html == (
        '<time datetime="2026-12-06T01:38:45Z">2026-12-06 01:38 UTC</time> · '
        '<time datetime="2026-12-06T01:38:45Z">2026-12-06 01:38:45.000000 UTC</time> · '
    )


def test_no_template_writes_utc_after_a_time_by_hand() -> None:
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for stated in STATED_UTC:
                line = line.replace(stated, "")
            if re.search(r"\bUTC\b", line):
                offenders.append(f"{path.relative_to(TEMPLATES)}:{number}")
    assert offenders == []


def _calls_table(zone: str, language: str) -> str:
    call = SimpleNamespace(
        intent_at=INSTANT,
        action="CreateRole",
        target="acs:ram::1:role/x",
        outcome="succeeded",
        get_outcome_display=lambda: "Succeeded",
        error_code="",
        request_id="req-1",
    )
    with timezone.override(ZoneInfo(zone)), translation.override(language):
        return render_to_string("delegations/_calls.html", {"calls": [call]})


def test_cloud_calls_header_names_the_zone_its_cells_are_shown_in() -> None:
    html = _calls_table("Asia/Shanghai", "en")
    assert '<th scope="col">Time (Asia/Shanghai)</th>' in html
    assert "UTC)" not in html.replace('UTC">', "")
    # The cell is in that zone (09:38 in Shanghai), the UTC instant on hover.
    assert '<time datetime="2026-12-06T01:38:45Z" title="2026-12-06 01:38:45 UTC">09:38:45' in html
    assert "Time (America/New_York)" in _calls_table("America/New_York", "en")


def test_cloud_calls_header_in_chinese() -> None:
    html = _calls_table("Asia/Shanghai", "zh-hans")
    assert '<th scope="col">时间\uff08Asia/Shanghai\uff09</th>' in html
