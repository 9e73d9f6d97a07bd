"""The dashboard (web/dist, built by `npm run build` in web/): `/` is its index.html, `/assets/*` its hashed
files with a year's cache, `/docs` Swagger UI from the same build, and `GET /graphql` from a browser (an
Accept of text/html, no `query`) GraphiQL from the same build (graphiql.html), which queries as the
signed-in user. The pages route with `#/...`, so no API path is ever shadowed; nothing is loaded from the
network."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.datastructures import Headers, QueryParams
from starlette.routing import Match, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

REPO_DIST = Path(__file__).resolve().parents[5] / "web" / "dist"
LONG_CACHE = "public, max-age=31536000, immutable"
GRAPHQL_PATH = "/graphql"


class HashedAssets(StaticFiles):
    """Static files whose names carry their content hash: cached for a year, never revalidated."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = LONG_CACHE
        return response


def install_dashboard(app: FastAPI, dist: Path | None) -> None:
    """Serve the dashboard built into `dist` (default: the checkout's web/dist), or say how to build it."""
    folder = dist if dist is not None else REPO_DIST
    router = APIRouter(include_in_schema=False)
    index = folder / "index.html"

    @router.get("/", response_model=None)
    async def dashboard() -> Response:
        if not index.is_file():
            return HTMLResponse(
                f"<p>The dashboard is not built: {index} is missing. Run scripts/setup (npm ci and npm run "
                "build in web/).</p>",
                status_code=404,
            )
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    @router.get("/docs", response_model=None)
    async def swagger_ui() -> Response:
        swagger = swagger_folder(folder)
        if swagger is None:
            return HTMLResponse(
                f"<p>Swagger UI is not built: no swagger-ui-* under {folder / 'assets'}. Run scripts/setup "
                "(npm ci and npm run build in web/). The API's schema is at /openapi.json.</p>",
                status_code=404,
            )
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"/assets/{swagger}/swagger-ui-bundle.js",
            swagger_css_url=f"/assets/{swagger}/swagger-ui.css",
            swagger_favicon_url=f"/assets/{swagger}/favicon-32x32.png",
        )

    app.include_router(router)
    app.router.routes.insert(0, graphiql_route(folder / "graphiql.html"))
    if (folder / "assets").is_dir():
        app.mount("/assets", HashedAssets(directory=folder / "assets"), name="assets")


def swagger_folder(dist: Path) -> str | None:
    """The folder of Swagger UI the build copied into assets (named by its version), if there is one."""
    found = sorted(path.name for path in (dist / "assets").glob("swagger-ui-*") if path.is_dir())
    return found[-1] if found else None


class BrowserOnlyRoute(Route):
    """A GET route that matches only a browser's page load (Accept: text/html, no `query` parameter), so
    every other request to the same path goes on to the API route behind it."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.FULL:
            return Match.NONE, {}
        accept = Headers(scope=scope).get("accept", "")
        asks_query = "query" in QueryParams(scope.get("query_string", b""))
        return (Match.FULL, child) if "text/html" in accept and not asks_query else (Match.NONE, {})


def graphiql_route(page: Path) -> BrowserOnlyRoute:
    """GET /graphql in a browser: the built GraphiQL page (its queries carry the session's token)."""

    async def graphiql(_: object) -> Response:
        if not page.is_file():
            return HTMLResponse(
                f"<p>GraphiQL is not built: {page} is missing. Run scripts/setup (npm ci and npm run build "
                "in web/). POST GraphQL queries to /graphql.</p>",
                status_code=404,
            )
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    return BrowserOnlyRoute(GRAPHQL_PATH, graphiql, methods=["GET"], include_in_schema=False)
