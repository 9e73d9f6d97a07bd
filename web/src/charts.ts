import { AreaSeries, ColorType, LineSeries, createChart, type UTCTimestamp } from "lightweight-charts";
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
