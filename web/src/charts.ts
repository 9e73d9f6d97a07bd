import { AreaSeries, CandlestickSeries, ColorType, LineSeries, createChart, createSeriesMarkers, type UTCTimestamp } from "lightweight-charts";
import { returnPct, type tradeMarkers } from "./derive";
import { drawdownPct, epochSeconds } from "./format";

/** Draw the equity line and, on its own scale below, the drawdown area (lightweight-charts, canvas). */
export function drawEquity(container: HTMLElement, curve: readonly { time: string; equity: number }[]): void {
  const chart = createChart(container, {
    height: 360,
    layout: { background: { type: ColorType.Solid, color: "#ffffff" }, textColor: "#1d2430" },
    rightPriceScale: { scaleMargins: { top: 0.05, bottom: 0.35 } },
    timeScale: { timeVisible: true },
  });
  const times = curve.map((p) => epochSeconds(p.time) as UTCTimestamp);
  const equity = chart.addSeries(LineSeries, { color: "#1f6feb", lineWidth: 2, title: "equity" });
  equity.setData(curve.map((p, i) => ({ time: times[i] as UTCTimestamp, value: p.equity })));
  const drawdown = chart.addSeries(AreaSeries, {
    priceScaleId: "drawdown",
    lineColor: "#b3261e",
    topColor: "rgba(179,38,30,0.05)",
    bottomColor: "rgba(179,38,30,0.35)",
    title: "drawdown %",
  });
  chart.priceScale("drawdown").applyOptions({ scaleMargins: { top: 0.7, bottom: 0 } });
  const falls = drawdownPct(curve.map((p) => p.equity));
  drawdown.setData(falls.map((v, i) => ({ time: times[i] as UTCTimestamp, value: v })));
  chart.timeScale().fitContent();
}

const PALETTE = ["#1f6feb", "#b3261e", "#1a7f37", "#9a6700", "#8250df"];

/** Overlay several equity curves as percent return from their first point, one colour each. */
export function drawOverlay(container: HTMLElement, curves: readonly { label: string; points: readonly { time: string; equity: number }[] }[]): string[] {
  const chart = createChart(container, {
    height: 360,
    layout: { background: { type: ColorType.Solid, color: "#ffffff" }, textColor: "#1d2430" },
    timeScale: { timeVisible: true },
  });
  curves.forEach((curve, i) => {
    const line = chart.addSeries(LineSeries, { color: PALETTE[i % PALETTE.length], lineWidth: 2, title: curve.label });
    const pct = returnPct(curve.points.map((p) => p.equity));
    line.setData(curve.points.map((p, j) => ({ time: epochSeconds(p.time) as UTCTimestamp, value: pct[j] as number })));
  });
  chart.timeScale().fitContent();
  return curves.map((_, i) => PALETTE[i % PALETTE.length] as string);
}

/** Candlesticks of one symbol with the trades' entry and exit markers. */
export function drawCandles(
  container: HTMLElement,
  bars: readonly { open_time: string; open: number; high: number; low: number; close: number }[],
  markers: ReturnType<typeof tradeMarkers>,
): void {
  const chart = createChart(container, {
    height: 320,
    layout: { background: { type: ColorType.Solid, color: "#ffffff" }, textColor: "#1d2430" },
    timeScale: { timeVisible: true },
  });
  const series = chart.addSeries(CandlestickSeries, { upColor: "#1a7f37", downColor: "#b3261e", wickUpColor: "#1a7f37", wickDownColor: "#b3261e", borderVisible: false });
  series.setData(bars.map((b) => ({ time: epochSeconds(b.open_time) as UTCTimestamp, open: b.open, high: b.high, low: b.low, close: b.close })));
  createSeriesMarkers(series, markers.map((m) => ({ ...m, time: m.time as UTCTimestamp })));
  chart.timeScale().fitContent();
}
