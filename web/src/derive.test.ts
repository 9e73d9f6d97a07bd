import { describe, expect, it } from "vitest";
import { errorLine, gridRange, heatColor, metricRows, monthlyReturns, returnPct, tradeMarkers } from "./derive";
import { boundsText, dateToUtc, inputAttrs, paramValue, paramsFromDefaults } from "./params";

describe("metricRows", () => {
  it("lists each metric of every run with its difference from the first", () => {
    const rows = metricRows([{ sharpe: 1.5, n: 3 }, { sharpe: 1.0, n: 5, extra: "x" }]);
    expect(rows).toEqual([
      { name: "sharpe", values: [1.5, 1.0], diffs: [0, -0.5] },
      { name: "n", values: [3, 5], diffs: [0, 2] },
      { name: "extra", values: [null, "x"], diffs: [null, null] },
    ]);
  });
});

describe("returnPct", () => {
  it("is percent from the first point", () => {
    expect(returnPct([200, 250, 150])).toEqual([0, 25, -25]);
  });
});

describe("errorLine", () => {
  it("reads the line of the strategy check's syntax error", () => {
    expect(errorLine("syntax error in source at line 7, column 12: invalid syntax")).toBe(7);
    expect(errorLine("no BaseStrategy subclass")).toBeNull();
  });
});

describe("heatColor and gridRange", () => {
  it("spans red to blue over the grid's finite values", () => {
    expect(gridRange([[1, null], [5, 3]])).toEqual([1, 5]);
    expect(heatColor(1, 1, 5)).toBe("rgb(179,38,30)");
    expect(heatColor(3, 1, 5)).toBe("rgb(255,255,255)");
    expect(heatColor(5, 1, 5)).toBe("rgb(31,111,235)");
    expect(heatColor(null, 1, 5)).toBe("#d8dde6");
  });
});

describe("params", () => {
  const fast = { name: "fast", default: 10, type: "int", minimum: 1, maximum: null, doc: "bars" };
  it("gives number inputs with bounds and defaults", () => {
    expect(inputAttrs(fast)).toEqual({ type: "number", step: "1", value: "10", min: "1" });
    expect(boundsText(fast)).toBe("≥ 1");
    expect(boundsText({ ...fast, maximum: 99 })).toBe("1 … 99");
  });
  it("types values and refuses what is not one, naming the param", () => {
    expect(paramValue(fast, "12")).toBe(12);
    expect(() => paramValue(fast, "1.5")).toThrow("fast must be an integer, was 1.5");
    expect(() => paramValue(fast, "")).toThrow('fast must be a number, was ""');
    expect(paramValue({ ...fast, type: "float" }, "0.25")).toBe(0.25);
  });
  it("infers types of an uploaded strategy's defaults", () => {
    expect(paramsFromDefaults({ a: 1, b: 0.5, c: true }).map((p) => p.type)).toEqual(["int", "float", "bool"]);
  });
  it("turns a date into the API's UTC time", () => {
    expect(dateToUtc("2018-01-01")).toBe("2018-01-01T00:00:00Z");
    expect(dateToUtc("")).toBeNull();
  });
});

describe("monthlyReturns", () => {
  it("is each month's last equity over the previous month's last", () => {
    const curve = [
      { time: "2020-01-01T00:00:00Z", equity: 100 },
      { time: "2020-01-31T00:00:00Z", equity: 110 }, // January: 110 / 100 - 1 = +10%
      { time: "2020-02-15T00:00:00Z", equity: 121 }, // February: 99 / 110 - 1 = -10%
      { time: "2020-02-29T00:00:00Z", equity: 99 },
      { time: "2021-03-01T00:00:00Z", equity: 99 }, // March 2021: 0%
    ];
    const got = monthlyReturns(curve);
    expect(got.map((m) => [m.year, m.month])).toEqual([[2020, 1], [2020, 2], [2021, 3]]);
    [10, -10, 0].forEach((want, i) => expect(got[i]!.pct).toBeCloseTo(want, 12));
  });
});

describe("tradeMarkers", () => {
  it("marks entries and exits of one symbol in time order", () => {
    const trades = [
      { symbol: "ETHUSD", side: "long", entry_time: "2020-01-01T00:00:00Z", exit_time: "2020-01-02T00:00:00Z", pnl: 1 },
      { symbol: "BTCUSD", side: "short", entry_time: "2020-01-05T00:00:00Z", exit_time: "2020-01-09T00:00:00Z", pnl: -2, exit_reason: "stop_loss" },
      { symbol: "BTCUSD", side: "long", entry_time: "2020-01-03T00:00:00Z", exit_time: null, pnl: 0 },
    ];
    const got = tradeMarkers(trades, "BTCUSD");
    expect(got.map((m) => [m.time, m.shape, m.color, m.text])).toEqual([
      [1578009600, "arrowUp", "#1f6feb", "L"],
      [1578182400, "arrowDown", "#1f6feb", "S"],
      [1578528000, "circle", "#b3261e", "stop_loss"],
    ]);
  });
});
