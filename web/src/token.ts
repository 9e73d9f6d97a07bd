/** What the page reads from a JWT without checking it (the gateway checks every request). */

/** The token's `exp` claim in epoch seconds, or null when it has none or is not a JWT. */
export function tokenExpiry(token: string): number | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const claims = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/"))) as { exp?: unknown };
    return typeof claims.exp === "number" && Number.isFinite(claims.exp) ? claims.exp : null;
  } catch {
    return null;
  }
}

/** Whether a token with this `exp` (epoch seconds; null: none) has expired at `nowMs`. */
export function isExpired(exp: number | null, nowMs: number): boolean {
  return exp !== null && exp * 1000 <= nowMs;
}
