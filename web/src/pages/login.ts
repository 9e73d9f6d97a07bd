import { signIn, takeSignOutReason } from "../api";
import { app, el, errorText, label } from "../dom";

export function loginPage(): void {
  app.replaceChildren();
  const form = el("form", { class: "login" });
  form.append(el("h1", {}, "Sign in"));
  const reason = takeSignOutReason();
  if (reason) form.append(el("p", { class: "notice", id: "signed-out" }, reason));
  const user = el("input", { name: "username", autocomplete: "username", required: "" });
  const pass = el("input", { name: "password", type: "password", autocomplete: "current-password", required: "" });
  const message = el("p", { class: "error", role: "alert" });
  form.append(label("User", user), label("Password", pass), el("button", { type: "submit" }, "Sign in"), message);
  form.onsubmit = async (event) => {
    event.preventDefault();
    message.textContent = "";
    try {
      await signIn(user.value, pass.value);
      location.hash = "#/runs";
    } catch (error) {
      message.textContent = errorText(error);
    }
  };
  app.append(form);
}
