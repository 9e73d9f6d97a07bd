"""The access token's claims: issued by the CLI and the login, read and bounded by the gateway."""

from __future__ import annotations

import pytest
from backtest_core.contracts.auth import ROLES, ClaimsError, Role, TokenClaims

pytestmark = pytest.mark.unit

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
PAYLOAD = {"sub": "alice", "role": "viewer", "iss": "backtest-platform", "aud": "backtest-gateway"}


def test_issued_claims_are_the_jwt_payload_with_integer_seconds():
    claims = TokenClaims.issue(
        "alice",
        Role.RESEARCHER,
        issuer="backtest-platform",
        audience="backtest-gateway",
        issued_s=NOW,
        ttl_s=3600,
    )

    assert claims.payload() == {
        "sub": "alice",
        "role": "researcher",
        "iss": "backtest-platform",
        "aud": "backtest-gateway",
        "iat": NOW,
        "exp": NOW + 3600,
    }
    assert [type(claims.payload()[key]) for key in ("iat", "exp")] == [int, int]


def test_read_keeps_sub_role_and_times_and_ignores_other_claims():
    claims = TokenClaims.read({**PAYLOAD, "iat": NOW, "exp": NOW + 60, "jti": "x"}, now_s=NOW)

    assert (claims.sub, claims.role, claims.iat, claims.exp) == ("alice", Role.VIEWER, NOW, NOW + 60)


def test_an_audience_list_is_read_as_a_tuple():
    claims = TokenClaims.read({**PAYLOAD, "aud": ["backtest-gateway", "other"], "exp": NOW}, now_s=NOW)

    assert claims.aud == ("backtest-gateway", "other")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sub": ""}, "token `sub` must be a non-empty user id, was ''"),
        ({"sub": 7}, "token `sub` must be a non-empty user id, was 7"),
        ({"role": "root"}, "token `role` must be one of viewer, researcher, admin, was 'root'"),
        ({"role": ["admin"]}, r"token `role` must be one of viewer, researcher, admin, was \['admin'\]"),
    ],
)
def test_a_bad_sub_or_role_is_refused_naming_the_claim_and_its_value(changes, message):
    with pytest.raises(ClaimsError, match=message):
        TokenClaims.read({**PAYLOAD, "exp": NOW + 60, **changes}, now_s=NOW)


def test_lifetime_from_iat_is_bounded_to_the_second():
    at_most = TokenClaims.read({**PAYLOAD, "iat": NOW, "exp": NOW + 3600}, now_s=NOW)
    one_more = TokenClaims.read({**PAYLOAD, "iat": NOW, "exp": NOW + 3601}, now_s=NOW)

    at_most.check_lifetime(max_lifetime_s=3600, leeway_s=10, now_s=NOW)
    with pytest.raises(ClaimsError, match="token lifetime must be at most 3600 s, was 3601 s"):
        one_more.check_lifetime(max_lifetime_s=3600, leeway_s=10, now_s=NOW)


def test_without_iat_the_lifetime_runs_from_now_with_the_leeway_on_top():
    within = TokenClaims.read({**PAYLOAD, "exp": NOW + 3610}, now_s=NOW)  # 3600 + leeway 10
    beyond = TokenClaims.read({**PAYLOAD, "exp": NOW + 3611}, now_s=NOW)

    within.check_lifetime(max_lifetime_s=3600, leeway_s=10, now_s=NOW)
    with pytest.raises(ClaimsError, match="was 3611 s"):
        beyond.check_lifetime(max_lifetime_s=3600, leeway_s=10, now_s=NOW)


def test_an_iat_that_is_not_a_number_counts_as_issued_now_without_leeway():
    claims = TokenClaims.read({**PAYLOAD, "iat": "soon", "exp": NOW + 3601}, now_s=NOW)

    assert claims.iat == NOW
    with pytest.raises(ClaimsError, match="was 3601 s"):
        claims.check_lifetime(max_lifetime_s=3600, leeway_s=10, now_s=NOW)


def test_roles_are_the_role_values_in_order_of_power():
    assert ROLES == ("viewer", "researcher", "admin")
