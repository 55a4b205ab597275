"""Hypothesis strategies for RAM principals and trust-policy documents, shared by the tests."""

from hypothesis import strategies as st

uids = st.from_regex(r"[1-9][0-9]{0,15}", fullmatch=True)
roots = uids.map(lambda uid: f"acs:ram::{uid}:root")
users = st.tuples(uids, st.from_regex(r"[A-Za-z][A-Za-z0-9._-]{0,10}", fullmatch=True)).map(
    lambda t: f"acs:ram::{t[0]}:user/{t[1]}"
)
ram_principals = st.one_of(roots, users)
services = st.sampled_from(["ecs.aliyuncs.com", "oos.aliyuncs.com", "fc.aliyuncs.com"])
conditions = st.sampled_from(
    [
        {"Bool": {"acs:MFAPresent": "true"}},
        {"StringEquals": {"saml:recipient": ["https://signin.aliyun.com/saml-role/sso"]}},
        {"IpAddress": {"acs:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}},
    ]
)


@st.composite
def string_or_list(draw, values: list[str]):
    """The forms a policy may use: a bare string for one value, or a list (maybe repeating)."""
    if len(values) == 1 and draw(st.booleans()):
        return values[0]
    repeated = values + draw(st.lists(st.sampled_from(values), max_size=2))
    return draw(st.permutations(repeated))


@st.composite
def statements(draw, pool: list[str], *, service_odds: int = 2):
    """One trust statement over principals from `pool`; 1 in `service_odds` names a service."""
    effect = draw(st.sampled_from(["Allow", "Allow", "Allow", "Deny"]))
    principal = {}
    ram = draw(st.lists(st.sampled_from(pool), max_size=4, unique=True)) if pool else []
    if ram:
        principal["RAM"] = draw(string_or_list(ram))
    if not principal or draw(st.integers(1, service_odds)) == 1:
        names = draw(st.lists(services, min_size=1, max_size=2, unique=True))
        principal["Service"] = draw(string_or_list(names))
    statement = {
        "Effect": effect,
        "Action": draw(st.sampled_from(["sts:AssumeRole", ["sts:AssumeRole"]])),
        "Principal": principal,
    }
    if draw(st.integers(0, 4)) == 0:
        statement["Condition"] = draw(conditions)
    return statement
