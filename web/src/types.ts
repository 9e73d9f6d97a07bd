/** The API's shapes the pages read (the gateway's schemas are the source of truth). */

export interface Config {
  strategy: unknown;
  params?: Record<string, unknown>;
  symbols: string[];
  interval?: string;
  start?: string | null;
  end?: string | null;
}

export interface Status {
  task_id: string;
  user_id?: string;
  state: string;
  fraction: number | null;
  stage?: string | null;
  failure?: { reason: string; message: string } | null;
  config: Config | null;
  strategy_ref?: { name: string; version: number } | null;
  created_at: string | null;
}

export interface Page {
  items: Status[];
  total: number;
  offset: number;
  next_offset: number | null;
}

export interface EquityPoint {
  time: string;
  equity: number;
}

export interface Result {
  config: Config;
  metrics: Record<string, unknown>;
  per_symbol: Record<string, unknown>[];
  equity_curve: EquityPoint[];
  trades: Record<string, unknown>[];
}

export interface Results {
  task_id: string;
  page: {
    trades_total: number;
    trades_next_offset: number | null;
    equity_total: number;
    equity_next_offset: number | null;
  };
  result: Result;
}

export const TERMINAL = new Set(["SUCCESS", "FAILURE", "CANCELLED"]);
