/** Follow a backtest's or sweep's events over the gateway's WebSocket (token in the bearer subprotocol). */
import { session } from "./api";

export function openStream(path: string, onFrame: (frame: Record<string, unknown>) => void, onClose: (code: number) => void): WebSocket {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}${path}`, ["bearer", session()?.token ?? ""]);
  ws.onmessage = (event) => onFrame(JSON.parse(String(event.data)) as Record<string, unknown>);
  ws.onclose = (event) => onClose(event.code);
  return ws;
}
