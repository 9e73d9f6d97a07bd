"""One self-contained HTML report of a backtest: equity and drawdown charts (inline SVG), metrics,
per-symbol table, trades, the configuration and the data it ran on. No script, no stylesheet or font
from the network, so it opens offline and prints (print CSS: no shadows, tables break across pages).

The same renderer serves `backtest run --report`, `backtest results ID --report` and the gateway's
`GET /backtest/{id}/report.html`.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from backtest_core.model.results import BacktestResult, Metrics

CHART_WIDTH, CHART_HEIGHT = 900, 220
CHART_POINTS_MAX = 2_000
TRADES_SHOWN_MAX = 10_000
SYMBOL_HEADERS = ("Symbol", "Trades", "Win %", "Net PnL", "Profit factor", "Fees", "Exposure %")
RETURN_HEADERS = ("Year", *(f"{m:02d}" for m in range(1, 13)), "Year %")
TRADE_HEADERS = (
    *("Symbol", "Side", "Entry", "Entry price", "Exit", "Exit price"),
    *("Units", "Fees", "PnL", "Return %", "Bars", "Exit reason"),
)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2430}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid #d8dde6}
.sub{color:#5b6577}table{border-collapse:collapse;font-variant-numeric:tabular-nums}
td,th{padding:3px 10px;border-bottom:1px solid #eceff4;text-align:right}th{background:#f4f6f9}
td:first-child,th:first-child{text-align:left}.metrics{columns:2;column-gap:32px}
.metrics div{break-inside:avoid;display:flex;justify-content:space-between;border-bottom:1px solid #eceff4}
svg{width:100%;max-width:900px;height:auto;display:block}pre{background:#f4f6f9;padding:8px;overflow:auto}
.pos{color:#137333}.neg{color:#b3261e}
@media print{body{margin:0;font-size:11px}h2{break-after:avoid}tr{break-inside:avoid}svg{max-width:100%}
pre{white-space:pre-wrap}}
"""


def drawdown_pct(equity: np.ndarray) -> np.ndarray:
    """Return each point's fall below the running peak, in percent (0 at a new peak, negative below)."""
    if equity.size == 0:
        return equity.astype(float)
    peaks = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(peaks > 0, (equity / peaks - 1.0) * 100.0, 0.0)
    return np.asarray(falls, dtype=float)


def _thin(values: np.ndarray, limit: int) -> np.ndarray:
    """Indices of at most `limit` points spread over `values`, always keeping the first and last."""
    if values.size <= limit:
        return np.arange(values.size)
    return np.unique(np.linspace(0, values.size - 1, limit).round().astype(int))


def svg_line_chart(values: np.ndarray, *, label: str, color: str, fill_to_zero: bool = False) -> str:
    """Return an inline SVG line chart of `values` with its minimum and maximum labelled."""
    if values.size == 0:
        return f"<p>No {html.escape(label)} points.</p>"
    keep = _thin(values, CHART_POINTS_MAX)
    ys = values[keep]
    low, high = float(ys.min()), float(ys.max())
    if fill_to_zero:
        high = max(high, 0.0)
    span = high - low or 1.0
    pad = 14
    xs = np.linspace(pad, CHART_WIDTH - pad, ys.size) if ys.size > 1 else np.array([CHART_WIDTH / 2])
    py = pad + (high - ys) / span * (CHART_HEIGHT - 2 * pad)
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, py, strict=True))
    area = ""
    if fill_to_zero:
        zero_y = pad + high / span * (CHART_HEIGHT - 2 * pad)
        area = (
            f'<polygon points="{xs[0]:.1f},{zero_y:.1f} {points} {xs[-1]:.1f},{zero_y:.1f}" '
            f'fill="{color}" fill-opacity="0.18" stroke="none"/>'
        )
    return (
        f'<svg viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" aria-label="{html.escape(label)}">'
        f'<rect width="{CHART_WIDTH}" height="{CHART_HEIGHT}" fill="#fff" stroke="#d8dde6"/>{area}'
        f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.5"/>'
        f'<text x="{pad}" y="12" font-size="11" fill="#5b6577">max {high:,.2f}</text>'
        f'<text x="{pad}" y="{CHART_HEIGHT - 3}" font-size="11" fill="#5b6577">min {low:,.2f}</text></svg>'
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,d}"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return html.escape(str(value))


def _signed(value: float) -> str:
    return f'<td class="{"pos" if value > 0 else "neg" if value < 0 else ""}">{_fmt(value)}</td>'


def _return_cell(value: float | None) -> str:
    return f"<td>{_fmt(None)}</td>" if value is None else _signed(value)


def _returns_rows(result: BacktestResult) -> list[str]:
    """Return one row per calendar year: each month's return % (blank: no bar that month) and the year's."""
    months = {m.period: m.return_pct for m in result.monthly_returns}
    rows = []
    for year in result.yearly_returns:
        cells = []
        for month in range(1, 13):
            key = f"{year.period}-{month:02d}"
            value = months.get(key)
            cells.append("<td></td>" if key not in months else _return_cell(value))
        total = _return_cell(year.return_pct)
        rows.append(f"<tr><td>{year.period}</td>{''.join(cells)}{total}</tr>")
    return rows


def _table(headers: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _metrics_block(metrics: Metrics, explanations: Mapping[str, str]) -> str:
    items = []
    for name, value in metrics.model_dump().items():
        title = html.escape(explanations.get(name, ""), quote=True)
        label = html.escape(name.replace("_", " "))
        items.append(
            f'<div title="{title}"><span>{label}</span><b data-metric="{name}">{_fmt(value)}</b></div>'
        )
    return f'<div class="metrics">{"".join(items)}</div>'


def config_fingerprint(result: BacktestResult) -> str:
    """SHA-256 of the canonical JSON of the configuration and the engine version (what the run was)."""
    canonical = json.dumps(
        {"config": result.config.model_dump(mode="json"), "engine": result.engine_version},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def render_report(
    result: BacktestResult,
    *,
    title: str,
    data: Mapping[str, Mapping[str, Any]] | None = None,
    explanations: Mapping[str, str] | None = None,
) -> str:
    """Return the whole HTML document of `result`; `data` describes each symbol's input (bars, range)."""
    equity = np.array([point.equity for point in result.equity_curve], dtype=float)
    curve = result.equity_curve
    span = f"{curve[0].time.isoformat()} → {curve[-1].time.isoformat()}" if curve else "no equity points"
    trades = list(result.trades)
    shown = trades[:TRADES_SHOWN_MAX]
    trade_rows = [
        f"<tr><td>{_fmt(t.symbol)}</td><td>{t.side}</td><td>{t.entry_time.isoformat()}</td>"
        f"<td>{_fmt(t.entry_price)}</td><td>{t.exit_time.isoformat()}</td><td>{_fmt(t.exit_price)}</td>"
        f"<td>{_fmt(t.units)}</td><td>{_fmt(t.fees)}</td>{_signed(t.pnl)}{_signed(t.return_pct)}"
        f"<td>{t.bars_held}</td><td>{_fmt(str(t.exit_reason))}</td></tr>"
        for t in shown
    ]
    more = f"<p>First {len(shown):,} of {len(trades):,} trades.</p>" if len(trades) > len(shown) else ""
    symbol_rows = [
        f"<tr><td>{_fmt(s.symbol)}</td><td>{s.trade_count}</td><td>{_fmt(s.win_rate_pct)}</td>"
        f"{_signed(s.net_pnl)}<td>{_fmt(s.profit_factor)}</td><td>{_fmt(s.fees_paid)}</td>"
        f"<td>{_fmt(s.exposure_pct)}</td></tr>"
        for s in result.per_symbol
    ]
    returns = _returns_rows(result)
    data_rows = [
        f"<tr><td>{_fmt(name)}</td><td>{_fmt(json.dumps(dict(info), default=str, sort_keys=True))}</td></tr>"
        for name, info in (data or {}).items()
    ]
    config_json = html.escape(json.dumps(result.config.model_dump(mode="json"), indent=2, sort_keys=True))
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class=sub>{html.escape(span)} · engine "
        f"{html.escape(result.engine_version)} · fingerprint <code>{config_fingerprint(result)}</code></p>"
        f"<h2>Equity</h2>{svg_line_chart(equity, label='equity', color='#1f6feb')}"
        f"<h2>Drawdown %</h2>"
        f"{svg_line_chart(drawdown_pct(equity), label='drawdown %', color='#b3261e', fill_to_zero=True)}"
        f"<h2>Metrics</h2>{_metrics_block(result.metrics, explanations or {})}"
        f"<h2>Per symbol</h2>"
        f"{_table(SYMBOL_HEADERS, symbol_rows)}"
        + (f"<h2>Returns by month and year %</h2>{_table(RETURN_HEADERS, returns)}" if returns else "")
        + f"<h2>Trades ({len(trades):,})</h2>{more}"
        + _table(TRADE_HEADERS, trade_rows)
        + f"<h2>Data</h2>{_table(['Symbol', 'Input'], data_rows) if data_rows else '<p>Not given.</p>'}"
        f"<h2>Configuration</h2><pre>{config_json}</pre>"
        f"<p class=sub>Rejected proposals: {result.rejected_proposals:,}</p></body></html>"
    )
