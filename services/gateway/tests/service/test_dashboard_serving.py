"""The gateway serves the built dashboard at / and its hashed assets, without shadowing any API route."""

from __future__ import annotations

from pathlib import Path

import pytest
from backtest_gateway.main import create_app
from backtest_gateway.settings import GatewaySettings
from fastapi.testclient import TestClient
from faststream.nats import NatsBroker, TestNatsBroker
from gateway_fakes import (
    InMemoryEventFeed,
    InMemoryMarketData,
    InMemoryQuotaStore,
    InMemoryStrategyStore,
    InMemoryTaskStore,
)

pytestmark = pytest.mark.service

SECRET = "dashboard-secret-0123456789abcdef-012345"
INDEX = '<!doctype html><script type="module" src="/assets/index-abc123.js"></script>'


async def client_for(dist: Path):
    settings = GatewaySettings(jwt_secret=SECRET, nats_url="nats://127.0.0.1:1", web_dist=dist)
    broker = NatsBroker(settings.nats_url)
    app = create_app(
        settings, broker=broker, store=InMemoryTaskStore(), feed=InMemoryEventFeed(),
        strategy_store=InMemoryStrategyStore(), market=InMemoryMarketData(), quotas=InMemoryQuotaStore(),
    )  # fmt: skip
    return app, broker


async def test_index_and_hashed_assets_are_served_and_api_routes_still_answer(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    app, broker = await client_for(tmp_path)
    async with TestNatsBroker(broker):
        with TestClient(app) as client:
            index = client.get("/")
            assert index.status_code == 200 and index.text == INDEX
            assert index.headers["cache-control"] == "no-cache"
            asset = client.get("/assets/index-abc123.js")
            assert asset.text == "console.log(1)"
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert client.get("/assets/missing.js").status_code == 404
            assert client.get("/health").json()["status"] in {"ok", "degraded", "down"}
            assert client.get("/backtest/list").status_code == 401
            assert client.post("/auth/login", json={}).status_code == 422
            assert "/" not in client.get("/openapi.json").json()["paths"]


async def test_without_a_build_the_root_says_how_to_build_it(tmp_path: Path) -> None:
    app, broker = await client_for(tmp_path / "nothing")
    async with TestNatsBroker(broker):
        with TestClient(app) as client:
            response = client.get("/")
            assert response.status_code == 404
            assert "Run scripts/setup (npm ci and npm run build in web/)" in response.text


async def test_docs_is_swagger_ui_from_the_build_with_no_address_off_this_host(tmp_path: Path) -> None:
    (tmp_path / "assets" / "swagger-ui-5.35.0").mkdir(parents=True)
    app, broker = await client_for(tmp_path)
    async with TestNatsBroker(broker):
        with TestClient(app) as client:
            docs = client.get("/docs")
            assert docs.status_code == 200
            assert '"/assets/swagger-ui-5.35.0/swagger-ui-bundle.js"' in docs.text
            assert '"/assets/swagger-ui-5.35.0/swagger-ui.css"' in docs.text
            assert "'/openapi.json'" in docs.text
            assert "http://" not in docs.text and "https://" not in docs.text
            assert client.get("/redoc").status_code == 404


async def test_docs_without_a_build_says_how_to_build_it_and_where_the_schema_is(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    app, broker = await client_for(tmp_path)
    async with TestNatsBroker(broker):
        with TestClient(app) as client:
            docs = client.get("/docs")
            assert docs.status_code == 404
            assert "npm ci and npm run build in web/" in docs.text and "/openapi.json" in docs.text


async def test_a_browser_at_graphql_gets_graphiql_and_api_calls_still_reach_graphql(tmp_path: Path) -> None:
    (tmp_path / "graphiql.html").write_text("<div id=graphiql></div>")
    app, broker = await client_for(tmp_path)
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    async with TestNatsBroker(broker):
        with TestClient(app) as client:
            page = client.get("/graphql", headers=html)  # a page load: no token needed for static HTML
            assert page.status_code == 200 and page.text == "<div id=graphiql></div>"
            assert page.headers["cache-control"] == "no-cache"
            assert (
                client.get("/graphql", params={"query": "{ sweeps { total } }"}, headers=html).status_code
                == 401
            )
            assert client.get("/graphql", headers={"Accept": "application/json"}).status_code == 401
            assert (
                client.post("/graphql", json={"query": "{ sweeps { total } }"}, headers=html).status_code
                == 401
            )


async def test_graphql_in_a_browser_without_a_build_says_how_to_build_it(tmp_path: Path) -> None:
    app, broker = await client_for(tmp_path)
    async with TestNatsBroker(broker):
        with TestClient(app) as client:
            page = client.get("/graphql", headers={"Accept": "text/html"})
            assert page.status_code == 404 and "npm ci and npm run build in web/" in page.text
