"""The i18n tests switch languages and zones: each test leaves the thread as it found it.

Django's LocaleMiddleware activates a request's language in the thread that serves it and
never deactivates it, so a page requested in zh-hans would leave the test thread speaking
Chinese to whatever test runs next.
"""

from collections.abc import Iterator

import pytest
from django.utils import timezone, translation


@pytest.fixture(autouse=True)
def _default_language_and_zone_around_each_test() -> Iterator[None]:
    translation.activate("en")
    timezone.deactivate()
    yield
    translation.activate("en")
    timezone.deactivate()
