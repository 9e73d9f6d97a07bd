/** The gateway's API with the signed-in user's token; a 401 or the token's expiry signs out (back to the
 * sign-in page, which says why). */
import { isExpired, tokenExpiry } from "./token";

const TOKEN_KEY = "backtest.token";
const USER_KEY = "backtest.user";
const SIGNED_OUT_KEY = "backtest.signed-out"; // why the last session ended, shown once on the sign-in page

export interface Session {
  token: string;
  user: string;
  role: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string | null = null,
  ) {
    super(message);
  }
}

/** The signed-in user, or null (an expired token ends the session here, before any request). */
export function session(): Session | null {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const user = sessionStorage.getItem(USER_KEY);
  if (!token || !user) return null;
  if (isExpired(tokenExpiry(token), Date.now())) {
    endSession("Your session expired: sign in again.");
    return null;
  }
  const [name, role] = user.split("\n");
  return { token, user: name ?? "", role: role ?? "" };
}

/** Epoch milliseconds at which the current session's token expires, or null (none, or no exp claim). */
export function sessionExpiresAt(): number | null {
  const exp = tokenExpiry(sessionStorage.getItem(TOKEN_KEY) ?? "");
  return exp === null ? null : exp * 1000;
}

function endSession(reason: string | null): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  if (reason) sessionStorage.setItem(SIGNED_OUT_KEY, reason);
}

/** Why the last session ended (expiry, a refused token), once; null after a plain sign-out. */
export function takeSignOutReason(): string | null {
  const reason = sessionStorage.getItem(SIGNED_OUT_KEY);
  sessionStorage.removeItem(SIGNED_OUT_KEY);
  return reason;
}

export function signOut(reason: string | null = null): void {
  endSession(reason);
  location.hash = "#/login";
}

async function errorOf(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as { error?: { message?: string; field?: string | null } };
    return new ApiError(response.status, body.error?.message ?? response.statusText, body.error?.field ?? null);
  } catch {
    return new ApiError(response.status, response.statusText);
  }
}

export async function signIn(username: string, password: string): Promise<Session> {
  const response = await fetch("/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (!response.ok) throw await errorOf(response);
  const body = (await response.json()) as { access_token: string; user: string; role: string };
  sessionStorage.setItem(TOKEN_KEY, body.access_token);
  sessionStorage.setItem(USER_KEY, `${body.user}\n${body.role}`);
  return { token: body.access_token, user: body.user, role: body.role };
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const current = session();
  if (!current) {
    signOut(sessionStorage.getItem(SIGNED_OUT_KEY));
    throw new ApiError(401, "not signed in");
  }
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${current.token}`);
  if (init.body) headers.set("Content-Type", "application/json");
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401) {
    const error = await errorOf(response);
    signOut(`Signed out: the gateway refused the session's token (${error.message}).`);
    throw error;
  }
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

/** One GraphQL query at /graphql as the signed-in user; its first error is thrown as an ApiError. */
export async function graphql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const body = await api<{ data?: T; errors?: { message: string }[] }>("/graphql", {
    method: "POST",
    body: JSON.stringify({ query, variables }),
  });
  if (body.errors?.length || !body.data) throw new ApiError(400, body.errors?.[0]?.message ?? "no data");
  return body.data;
}
