/** The gateway's API with the signed-in user's token; a 401 signs out (back to the sign-in page). */

const TOKEN_KEY = "backtest.token";
const USER_KEY = "backtest.user";

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

export function session(): Session | null {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const user = sessionStorage.getItem(USER_KEY);
  if (!token || !user) return null;
  const [name, role] = user.split("\n");
  return { token, user: name ?? "", role: role ?? "" };
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
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
    signOut();
    throw new ApiError(401, "not signed in");
  }
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${current.token}`);
  if (init.body) headers.set("Content-Type", "application/json");
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401) {
    signOut();
    throw await errorOf(response);
  }
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}
