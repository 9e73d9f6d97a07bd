/** A sweep's surface as a heatmap on a plain canvas: one rectangle per (x, y) cell, labelled axes. */
import { gridRange, heatColor } from "./derive";

export interface Surface {
  metric: string;
  x: { name: string; values: unknown[] };
  y: { name: string; values: unknown[] };
  z: (number | null)[][];
  trials: (number | null)[][];
}

const LEFT = 70;
const BOTTOM = 40;
const TOP = 10;

/** Draw the surface; returns a lookup from a canvas point to the cell's (trial, value). */
export function drawHeatmap(canvas: HTMLCanvasElement, s: Surface): (px: number, py: number) => { trial: number | null; value: number | null; x: unknown; y: unknown } | null {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 720;
  const height = canvas.clientHeight || 420;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d")!;
  ctx.scale(ratio, ratio);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  const cols = s.x.values.length;
  const rows = s.y.values.length;
  const cw = (width - LEFT - 10) / Math.max(1, cols);
  const ch = (height - TOP - BOTTOM) / Math.max(1, rows);
  const [lo, hi] = gridRange(s.z);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const value = s.z[i]?.[j] ?? null;
      const x = LEFT + j * cw;
      const y = TOP + (rows - 1 - i) * ch; // y ascends upwards
      ctx.fillStyle = heatColor(value, lo, hi);
      ctx.fillRect(x, y, cw - 1, ch - 1);
      if (cw > 34 && ch > 14 && value !== null) {
        ctx.fillStyle = "#1d2430";
        ctx.fillText(value.toFixed(2), x + cw / 2, y + ch / 2);
      }
    }
  }
  ctx.fillStyle = "#1d2430";
  const every = (n: number, room: number): number => Math.max(1, Math.ceil(n / Math.max(1, room)));
  const xStep = every(cols, (width - LEFT) / 40);
  for (let j = 0; j < cols; j += xStep) ctx.fillText(String(s.x.values[j]), LEFT + j * cw + cw / 2, height - BOTTOM + 12);
  ctx.textAlign = "right";
  const yStep = every(rows, (height - BOTTOM) / 18);
  for (let i = 0; i < rows; i += yStep) ctx.fillText(String(s.y.values[i]), LEFT - 6, TOP + (rows - 1 - i) * ch + ch / 2);
  ctx.textAlign = "center";
  ctx.fillText(s.x.name, LEFT + (width - LEFT) / 2, height - 10);
  ctx.save();
  ctx.translate(12, TOP + (height - TOP - BOTTOM) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(s.y.name, 0, 0);
  ctx.restore();
  return (px, py) => {
    const j = Math.floor((px - LEFT) / cw);
    const i = rows - 1 - Math.floor((py - TOP) / ch);
    if (j < 0 || j >= cols || i < 0 || i >= rows) return null;
    return { trial: s.trials[i]?.[j] ?? null, value: s.z[i]?.[j] ?? null, x: s.x.values[j], y: s.y.values[i] };
  };
}
