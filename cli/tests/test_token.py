"""`backtest token create` signs tokens the gateway accepts (checked with PyJWT and the gateway itself)."""

from __future__ import annotations

import sys

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


def test_a_ttl_beyond_the_gateways_default_maximum_is_signed_with_a_warning_naming_the_setting(
    monkeypatch, capsys
):
    monkeypatch.setenv("GATEWAY_JWT_SECRET", SECRET)

    code = main(["token", "create", "--user", "alice", "--role", "viewer", "--ttl", "8d"])

    out, err = capsys.readouterr()
    claims = jwt.decode(out.strip(), SECRET, algorithms=["HS256"], audience="backtest-gateway")
    assert (code, claims["exp"] - claims["iat"]) == (0, 8 * 86400)
    assert "default maximum of 604800 s: only a gateway with GATEWAY_JWT_MAX_LIFETIME_S >= 691200" in err


def test_a_ttl_within_the_default_maximum_has_no_warning(monkeypatch, capsys):
    monkeypatch.setenv("GATEWAY_JWT_SECRET", SECRET)

    main(["token", "create", "--user", "alice", "--role", "viewer", "--ttl", "7d"])

    assert "maximum" not in capsys.readouterr().err


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


def test_missing_secret_is_exit_2_naming_the_variable_and_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GATEWAY_JWT_SECRET", raising=False)
    monkeypatch.setenv("BACKTEST_RUN_DIR", str(tmp_path / "run"))

    code = main(["token", "create", "--user", "alice", "--role", "viewer"])

    assert code == 2
    assert (
        "environment variable GATEWAY_JWT_SECRET must hold the JWT secret, was unset, and "
        f"{tmp_path / 'run' / 'secrets' / 'jwt'} (written by scripts/up) does not exist"
    ) in capsys.readouterr().err


def test_short_secret_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("GATEWAY_JWT_SECRET", "short")

    assert main(["token", "create", "--user", "alice", "--role", "viewer"]) == 2
    assert "at least 32 bytes for HS256, was 5" in capsys.readouterr().err


def test_durations():
    assert [parse_duration(t) for t in ("90", "90s", "30m", "12h", "7d")] == [90, 90, 1800, 43200, 604800]


def _write_jwt_secret(run_dir, secret):
    """Write ``<run_dir>/secrets/jwt`` as scripts/up does."""
    (run_dir / "secrets").mkdir(parents=True)
    path = run_dir / "secrets" / "jwt"
    path.write_text(secret + "\n")
    return path


def test_token_create_signs_with_the_secret_scripts_up_wrote_and_says_so(tmp_path, monkeypatch, capsys):
    secret_file = _write_jwt_secret(tmp_path / "run", SECRET)
    monkeypatch.setenv("BACKTEST_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("GATEWAY_JWT_SECRET", raising=False)

    code = main(["token", "create", "--user", "alice", "--role", "researcher"])

    out, err = capsys.readouterr()
    claims = jwt.decode(out.strip(), SECRET, algorithms=["HS256"], audience="backtest-gateway")
    assert (code, claims["sub"]) == (0, "alice")
    assert f"backtest token create: secret from {secret_file}" in err


def test_token_create_finds_the_secret_of_the_checkout_whose_virtualenv_runs_it(
    tmp_path, monkeypatch, capsys
):
    _write_jwt_secret(tmp_path / "checkout" / ".run", SECRET)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "checkout" / ".venv"))
    monkeypatch.delenv("BACKTEST_RUN_DIR", raising=False)
    monkeypatch.delenv("GATEWAY_JWT_SECRET", raising=False)

    assert main(["token", "create", "--user", "bob", "--role", "viewer"]) == 0

    token = capsys.readouterr().out.strip()
    assert jwt.decode(token, SECRET, algorithms=["HS256"], audience="backtest-gateway")["sub"] == "bob"


def test_secret_in_the_environment_wins_over_the_secret_file(tmp_path, monkeypatch, capsys):
    _write_jwt_secret(tmp_path / "run", "file-secret-0123456789abcdef-0123456789")
    monkeypatch.setenv("BACKTEST_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("GATEWAY_JWT_SECRET", SECRET)

    assert main(["token", "create", "--user", "alice", "--role", "viewer"]) == 0

    out, err = capsys.readouterr()
    assert (
        jwt.decode(out.strip(), SECRET, algorithms=["HS256"], audience="backtest-gateway")["sub"] == "alice"
    )
    assert "secret from GATEWAY_JWT_SECRET" in err
