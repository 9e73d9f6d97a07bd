import "./style.css";
import { session, sessionExpiresAt, signOut } from "./api";
import { comparePage } from "./pages/compare";
import { dataPage } from "./pages/data";
import { loginPage } from "./pages/login";
import { newRunPage } from "./pages/newrun";
import { runPage } from "./pages/run";
import { runsPage } from "./pages/runs";
import { strategiesPage } from "./pages/strategies";
import { sweepPage, sweepsPage } from "./pages/sweeps";
import { walkForwardPage, walkForwardsPage } from "./pages/walkforward";

/** Route #/page/arg/... to its page; everything but the sign-in page needs a session. */
function route(): void {
  const hash = location.hash || "#/runs";
  if (!session() && hash !== "#/login") {
    location.hash = "#/login";
    return;
  }
  const [, page, arg = "", more = "", sort = undefined] = hash.split("/");
  if (page === "login") loginPage();
  else if ((page === "run" || page === "result") && arg) void runPage(arg);
  else if (page === "new") void newRunPage(arg);
  else if (page === "compare") void comparePage(arg.split(",").filter(Boolean));
  else if (page === "strategies") void strategiesPage(arg);
  else if (page === "sweeps") void sweepsPage();
  else if (page === "sweep" && arg) void sweepPage(arg);
  else if (page === "walkforwards") void walkForwardsPage();
  else if (page === "walkforward" && arg) void walkForwardPage(arg);
  else if (page === "data") void dataPage();
  else void runsPage(Number(arg) || 0, more, sort || undefined);
}

let expiryTimer: number | undefined;

/** Sign out when the session's token expires, even on a page that makes no more requests. */
function watchExpiry(): void {
  window.clearTimeout(expiryTimer);
  const at = session() ? sessionExpiresAt() : null;
  if (at === null) return;
  expiryTimer = window.setTimeout(() => signOut("Your session expired: sign in again."), Math.min(at - Date.now(), 2 ** 31 - 1));
}

window.addEventListener("hashchange", () => {
  route();
  watchExpiry();
});
route();
watchExpiry();
