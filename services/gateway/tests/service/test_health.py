"""GET /health is public and reports the NATS connection."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.service


def test_health_needs_no_token_and_reports_version(gateway):
    response = gateway.client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "nats_connected": True, "version": "0.1.0"}
