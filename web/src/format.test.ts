import { describe, expect, it } from "vitest";
import { drawdownPct, epochSeconds, formatValue, tradesCsv } from "./format";

describe("drawdownPct", () => {
  it("is the fall below the running peak", () => {
    const got = drawdownPct([100, 120, 90, 108, 130, 117]);
    const want = [0, 0, -25, -10, 0, -10];
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i] as number, 12));
  });
});

describe("epochSeconds", () => {
  it("reads UTC ISO times", () => {
    expect(epochSeconds("2020-01-02T00:00:00Z")).toBe(1577923200);
  });
  it("refuses anything else, naming it", () => {
    expect(() => epochSeconds("yesterday")).toThrow("not an ISO-8601 time: yesterday");
  });
});

describe("formatValue", () => {
  it("formats numbers and nulls", () => {
    expect(formatValue(null)).toBe("—");
    expect(formatValue(12345)).toBe("12,345");
    expect(formatValue(1.234567)).toBe("1.2346");
    expect(formatValue(1234.567)).toBe("1,234.57");
  });
});

describe("tradesCsv", () => {
  it("has a header and quotes cells with commas or quotes", () => {
    const csv = tradesCsv([
      { symbol: "BTCUSD", pnl: 1.5, note: 'a,"b"' },
      { symbol: "ETHUSD", pnl: -2, note: null },
    ]);
    expect(csv).toBe('symbol,pnl,note\nBTCUSD,1.5,"a,""b"""\nETHUSD,-2,\n');
  });
  it("is empty without trades", () => {
    expect(tradesCsv([])).toBe("");
  });
});
