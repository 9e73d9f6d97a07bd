"""Time to a drawn result page in headless Chromium, and the gzip size of the dashboard's built assets
(and apart from them GraphiQL's, which only /graphql loads, and Swagger UI's, which only /docs loads).

    python bench/web.py [--runs 7] [--trades 2000] [--equity 5000]

Starts its own nats-server and MongoDB-compatible server, stores one SUCCESS task with --equity points
and --trades trades (bench/gateway_load.py's store, the results writer's packed form), runs the gateway
as its own process serving web/dist (built first by web/build-if-stale.sh), and opens `#/run/<task>` in
Debian's chromium through Playwright (executable_path; already signed in through sessionStorage) --runs
times, each in a fresh browser context (no HTTP cache). A run's time is from the navigation's start to
the first animation frame on which the result is on the page (metrics, trades table, CSV link) and the
equity canvas has coloured pixels: status + every results page fetched, parsed, laid out and drawn;
the columns before it are the last API answer's end and the page's own marks (chart set, tables built).
Everything it started is stopped.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import statistics
import sys
import tempfile
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "web" / "dist"

DRAWN_JS = """() => new Promise((resolve) => {
  const inked = () => {
    for (const canvas of document.querySelectorAll('#equity-chart canvas')) {
      if (!canvas.width) continue;
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] > 0 && Math.abs(data[i] - data[i + 2]) > 40) return true;
      }
    }
    return false;
  };
  const poll = () => {
    if (document.querySelector('#result[data-ready]') && inked()) {
      const api = performance.getEntriesByType('resource').filter((e) => e.name.includes('/backtest/'));
      const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
      resolve([performance.now(), Math.max(...api.map((e) => e.responseEnd)),
               mark('result-fetched'), mark('chart-set'), mark('tables-built')]);
    }
    else requestAnimationFrame(poll);
  };
  poll();
})"""


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def gzip_sizes(page: str = "index.html") -> list[tuple[str, int, int]]:
    """(file, bytes, gzip -9 bytes) of a built page and every file it loads, static and lazy imports and
    their CSS, read from Vite's manifest (dist/.vite/manifest.json)."""
    manifest = json.loads((DIST / ".vite" / "manifest.json").read_text())
    seen: set[str] = set()
    pending = [page]
    while pending:
        key = pending.pop()
        if key in seen:
            continue
        seen.add(key)
        pending += manifest[key].get("imports", []) + manifest[key].get("dynamicImports", [])
    files = {name for key in seen for name in [manifest[key]["file"], *manifest[key].get("css", [])]}
    return [_sizes(name, [DIST / name]) for name in [page, *sorted(files)]]


def docs_sizes() -> list[tuple[str, int, int]]:
    """(folder, bytes, gzip -9 bytes) of each versioned Swagger UI folder that /docs loads."""
    folders = sorted(f for f in (DIST / "assets").iterdir() if f.is_dir())
    return [_sizes(f"{f.name}/ (/docs only)", _files_in(f)) for f in folders]


def _total(name: str, sizes: list[tuple[str, int, int]]) -> tuple[str, int, int]:
    return name, sum(s[1] for s in sizes), sum(s[2] for s in sizes)


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _sizes(name: str, files: list[Path]) -> tuple[str, int, int]:
    raw = [f.read_bytes() for f in files]
    return name, sum(len(b) for b in raw), sum(len(gzip.compress(b, compresslevel=9)) for b in raw)


def time_pages(url: str, token: str, task_id: str, runs: int) -> list[tuple[float, ...]]:
    """Ms from navigation start to (last API answer, chart set, tables built, drawn), a fresh context each."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    from web_browser import CHROMIUM_ARGS, chromium_path

    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        for _ in range(runs):
            context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
            context.add_init_script(
                f"sessionStorage.setItem('backtest.token', '{token}');"
                "sessionStorage.setItem('backtest.user', 'heavy\\nresearcher');"
            )
            page = context.new_page()
            page.goto(f"/#/run/{task_id}")
            drawn, answered, _, chart, tables = page.evaluate(DRAWN_JS)
            times.append((float(answered), float(chart), float(tables), float(drawn)))
            rows = page.locator("#trades tbody tr").count()
            if rows == 0:
                raise SystemExit("the result page showed no trades")
            context.close()
        browser.close()
    return times


def main() -> None:
    """Build, serve, time and print the two tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="page loads (the first one is cold)")
    parser.add_argument("--trades", type=int, default=2000)
    parser.add_argument("--equity", type=int, default=5000, help="equity points")
    args = parser.parse_args()
    load = _load("bench_gateway_load", REPO / "bench" / "gateway_load.py")
    web = _load("bench_web_browser", REPO / "tests" / "e2e" / "web_browser.py")
    web.build_dashboard()
    infra = load.infra
    original = infra.make_large_result
    infra.make_large_result = lambda config, trades: original(
        config, trades=trades, equity_points=args.equity
    )
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        work = Path(tmp)
        (work / "nats").mkdir()
        (work / "mongo").mkdir()
        nats_server = infra.NatsServer(work / "nats")
        mongo = infra.MongoEmulator(work / "mongo", auth=False)
        nats_server.start()
        mongo.start()
        gateway = None
        try:
            load.store_heavy_task(mongo.uri, "bench_web", nats_server.url, args.trades)
            gateway, url = load.start_gateway(work, nats_server.url, mongo.uri, "bench_web")
            times = time_pages(url, load.token("heavy"), load.TASK, args.runs)
        finally:
            if gateway is not None:
                gateway.terminate()
                gateway.wait(timeout=30)
            mongo.stop()
            nats_server.stop()
    warm = times[1:] or times
    shape = f"{args.equity:,} equity points, {args.trades:,} trades, {len(times)} loads"
    print(f"result page: {shape}, headless Chromium")
    print("| load | last API answer, ms | chart set, ms | tables built, ms | drawn, ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print("| first (fresh browser) | " + " | ".join(f"{v:.0f}" for v in times[0]) + " |")
    spans = []
    for index in range(4):
        values = [t[index] for t in warm]
        spans.append(f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})")
    print("| later, median (min-max) | " + " | ".join(spans) + " |")
    sizes = gzip_sizes()
    print("| built file | bytes | gzip -9 bytes |")
    print("| --- | ---: | ---: |")
    for name, raw, packed in sizes:
        print(f"| {name} | {raw:,} | {packed:,} |")
    graphiql = gzip_sizes("graphiql.html")
    for name, raw, packed in [
        _total("total (the dashboard)", sizes),
        _total("graphiql.html and all it loads (/graphql in a browser only)", graphiql),
        *docs_sizes(),
    ]:
        print(f"| {name} | {raw:,} | {packed:,} |")


if __name__ == "__main__":
    main()
