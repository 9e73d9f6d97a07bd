"""`backtest token create` signs tokens the gateway accepts (checked with PyJWT and the gateway itself)."""

from __future__ import annotations

import jwt
import pytest
from backtest_cli.main import main
from backtest_cli.token import create_token, parse_duration

SECRET = "cli-secret-0123456789abcdef-0123456789"


def test_token_create_prints_a_jwt_with_the_gateway_claims(monkeypatch, capsys):
    monkeypatch.setenv("GATEWAY_JWT_SECRET", SECRET)

    code = main(["token", "create", "--user", "alice", "--role", "researcher", "--ttl", "2h"])

    token = capsys.readouterr().out.strip()
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="backtest-gateway", issuer="backtest-platform"
    )
    assert code == 0
    assert (claims["sub"], claims["role"]) == ("alice", "researcher")
    assert claims["exp"] - claims["iat"] == 7200


def test_token_is_accepted_by_the_gateway():
    from backtest_gateway.auth import Principal, Role, decode_token
    from backtest_gateway.settings import GatewaySettings

    token = create_token("ops", "admin", SECRET.encode(), ttl_s=60)

    assert decode_token(token, GatewaySettings(jwt_secret=SECRET)) == Principal(
        user_id="ops", role=Role.ADMIN
    )


def test_expired_token_is_rejected_by_pyjwt():
    token = create_token("alice", "viewer", SECRET.encode(), ttl_s=60, now_s=1_000_000)

    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, SECRET, algorithms=["HS256"], audience="backtest-gateway")


def test_secret_from_another_env_variable(monkeypatch, capsys):
    monkeypatch.setenv("OPS_SECRET", SECRET)

    assert main(["token", "create", "--user", "u", "--role", "viewer", "--secret-env", "OPS_SECRET"]) == 0
    assert jwt.decode(
        capsys.readouterr().out.strip(), SECRET, algorithms=["HS256"], audience="backtest-gateway"
    )


def test_missing_secret_is_exit_2_naming_the_variable(monkeypatch, capsys):
    monkeypatch.delenv("GATEWAY_JWT_SECRET", raising=False)

    code = main(["token", "create", "--user", "alice", "--role", "viewer"])

    assert code == 2
    assert "GATEWAY_JWT_SECRET must hold the JWT secret, was unset" in capsys.readouterr().err


def test_short_secret_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("GATEWAY_JWT_SECRET", "short")

    assert main(["token", "create", "--user", "alice", "--role", "viewer"]) == 2
    assert "at least 32 bytes for HS256, was 5" in capsys.readouterr().err


def test_durations():
    assert [parse_duration(t) for t in ("90", "90s", "30m", "12h", "7d")] == [90, 90, 1800, 43200, 604800]
