"""Fail-safe end times in trust policies: a time-bound principal is admitted only by its own
`DateLessThan acs:CurrentTime` statement; open-ended ones stay in the plain statement; other
statements (someone else's conditions) are never touched; applying twice changes nothing."""

import datetime as dt

import pytest

from cloud import policies

P1 = "acs:ram::12345678:root"
P2 = "acs:ram::87654321:root"
OTHER = "acs:ram::55555555:root"
END = "2027-01-01T00:00:00Z"
LATER = "2027-06-01T00:00:00Z"


def merged(*principals: str, current: object = None) -> dict:
    return policies.merge_trust_policy(
        current, managed_wanted=set(principals), managed_all_known={P1, P2}
    )


def test_a_time_bound_principal_gets_its_own_statement() -> None:
    document = policies.apply_trust_end_times(merged(P1, P2), end_times={P1: END}, managed={P1, P2})
    assert policies.trust_policy_end_times(document) == {P1: END}
    plain = [s for s in document["Statement"] if "Condition" not in s]
    assert plain[0]["Principal"]["RAM"] == [P2]
    assert policies.trust_policy_principals(document).ram == {P1, P2}
    again = policies.apply_trust_end_times(document, end_times={P1: END}, managed={P1, P2})
    assert again == document


def test_a_new_end_replaces_the_old_and_open_ended_goes_back_to_plain() -> None:
    first = policies.apply_trust_end_times(merged(P1), end_times={P1: END}, managed={P1, P2})
    extended = policies.apply_trust_end_times(
        merged(P1, current=first), end_times={P1: LATER}, managed={P1, P2}
    )
    assert policies.trust_policy_end_times(extended) == {P1: LATER}
    opened = policies.apply_trust_end_times(
        merged(P1, current=extended), end_times={}, managed={P1, P2}
    )
    assert policies.trust_policy_end_times(opened) == {}
    assert policies.trust_policy_principals(opened).ram == {P1}


def test_removing_a_time_bound_principal_drops_its_statement() -> None:
    first = policies.apply_trust_end_times(merged(P1, P2), end_times={P1: END}, managed={P1, P2})
    gone = policies.apply_trust_end_times(merged(P2, current=first), end_times={}, managed={P1, P2})
    assert policies.trust_policy_principals(gone).ram == {P2}
    assert "Condition" not in str(gone)


def test_statements_the_portal_does_not_own_are_kept_exactly() -> None:
    foreign = {
        "Action": "sts:AssumeRole",
        "Effect": "Allow",
        "Principal": {"RAM": [OTHER]},
        "Condition": {"StringEquals": {"sts:ExternalId": "abc"}},
    }
    foreign_timed = policies.end_time_statement(OTHER, END)
    current = {"Version": "1", "Statement": [foreign, foreign_timed]}
    document = policies.apply_trust_end_times(
        merged(P1, current=current), end_times={P1: LATER, OTHER: LATER}, managed={P1, P2}
    )
    texts = [
        policies.policy_to_text({"Version": "1", "Statement": [s]}) for s in document["Statement"]
    ]
    for kept in (foreign, foreign_timed):
        canonical = policies.canonical_policy({"Version": "1", "Statement": [kept]}, trust=True)
        assert policies.policy_to_text(canonical) in texts
    assert policies.trust_policy_end_times(document) == {OTHER: END, P1: LATER}


def test_the_end_time_is_utc_to_the_second() -> None:
    moment = dt.datetime(2027, 1, 1, 8, 0, 0, 999, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert policies.trust_end_time(moment) == "2027-01-01T00:00:00Z"
    with pytest.raises(policies.PolicyError):
        policies.trust_end_time(dt.datetime(2027, 1, 1))
