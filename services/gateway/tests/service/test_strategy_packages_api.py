"""A strategy package (entry `source` + helper `files`): uploaded, checked without running, submitted."""

from __future__ import annotations

import pytest
from backtest_core.model.config import SourceStrategy
from backtest_core.model.strategy_package import PACKAGE_MAX_FILES

pytestmark = pytest.mark.service

ENTRY = """from backtest_core.strategy import Side, Signal
from base import SmaBase
from helpers import sma


class AboveSma(SmaBase):
    def decide(self, df, interval, **p):
        return Signal(Side.BUY) if df.close[-1] > sma(df.close[-3:]) else Signal(Side.SELL)
"""
BASE = "from backtest_core.strategy import BaseStrategy\n\n\nclass SmaBase(BaseStrategy):\n    pass\n"
FILES = {
    "base.py": BASE,
    "helpers.py": "def sma(values):\n    return sum(values) / len(values)\n",
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upload(gateway, headers, files, source=ENTRY):
    body = {"name": "above_sma", "source": source, "files": files}
    return gateway.client.post("/strategy/create", json=body, headers=headers)


def test_package_is_stored_with_its_helpers_and_the_entry_class_may_derive_from_a_helper_class(
    gateway, make_token
):
    headers = auth(make_token("alice"))

    response = upload(gateway, headers, FILES)

    assert response.status_code == 201, response.text
    assert (response.json()["class_name"], response.json()["files"]) == ("AboveSma", FILES)
    versions = gateway.client.get("/strategy/above_sma/versions", headers=headers).json()
    assert versions["versions"][0]["files"] == ["base.py", "helpers.py"]


def test_submitted_package_carries_its_helpers_to_the_queue(gateway, make_token):
    headers = auth(make_token("alice"))
    upload(gateway, headers, FILES)

    response = gateway.client.post(
        "/backtest/submit", json={"strategy": {"user": "above_sma"}, "symbols": ["BTCUSD"]}, headers=headers
    )

    assert response.status_code == 202, response.text
    [command] = gateway.published.submits
    assert isinstance(command.config.strategy, SourceStrategy)
    assert (command.config.strategy.source, command.config.strategy.files) == (ENTRY, FILES)


def test_syntax_error_in_a_helper_names_the_module_and_line_without_running_anything(
    gateway, make_token, tmp_path
):
    marker = tmp_path / "ran"
    files = {**FILES, "helpers.py": f"open({str(marker)!r}, 'w')\ndef sma(:\n"}

    response = upload(gateway, auth(make_token("alice")), files)

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("strategy_rejected", "files.helpers.py")
    assert error["message"].startswith("syntax error in module 'helpers.py' at line 2")
    assert not marker.exists()
    assert gateway.strategies.records == {}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Helpers.py", "module paths must be lower-case letters, digits and _"),
        ("../x.py", "module paths must be lower-case letters, digits and _"),
        ("json.py", "helper modules must not shadow the standard library, the engine or its libraries"),
    ],
)
def test_bad_module_paths_are_422_stating_the_rule_and_the_path(gateway, make_token, path, expected):
    response = upload(gateway, auth(make_token("alice")), {**FILES, path: "x = 1\n"})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "files"
    assert expected in error["message"] and repr(path) in error["message"]


def test_too_many_helpers_is_422_stating_the_limit(gateway, make_token):
    files = {f"m{i}.py": "" for i in range(PACKAGE_MAX_FILES + 1)}

    response = upload(gateway, auth(make_token("alice")), files)

    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        f"a strategy package holds at most {PACKAGE_MAX_FILES} helper modules, was {PACKAGE_MAX_FILES + 1}"
    )


def test_package_over_the_gateways_byte_limit_is_422_with_limit_and_size(gateway, make_token, settings):
    big = "x = 1\n" * (settings.strategy_source_max_bytes // 6)
    size = len(ENTRY.encode()) + sum(len(t.encode()) for t in FILES.values()) + len(big.encode())

    response = upload(gateway, auth(make_token("alice")), {**FILES, "big.py": big})

    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        f"strategy package (entry module and helpers) must be at most {settings.strategy_source_max_bytes} "
        f"bytes (UTF-8), was {size} bytes"
    )


def test_put_of_a_package_adds_a_version_and_the_single_module_version_stays(gateway, make_token):
    headers = auth(make_token("alice"))
    single = (
        "from backtest_core.strategy import BaseStrategy, Side, Signal\n\n\nclass AboveSma(BaseStrategy):\n"
    )
    single += "    def decide(self, df, interval, **p):\n        return Signal(Side.BUY)\n"
    upload(gateway, headers, {}, source=single)

    updated = gateway.client.put(
        "/strategy/above_sma", json={"source": ENTRY, "files": FILES}, headers=headers
    )

    assert updated.status_code == 200, updated.text
    assert (updated.json()["version"], updated.json()["files"]) == (2, FILES)
    first = gateway.client.get("/strategy/above_sma/versions/1", headers=headers).json()
    assert (first["source"], first["files"]) == (single, {})
