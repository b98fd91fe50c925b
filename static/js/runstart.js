// Starting real runs from a playground: POST JSON with Django's CSRF token (the csrftoken
// cookie, sent back as X-CSRFToken), the server's {"error": ...} turned into an Error.
import { messageOf } from "./playground.js";

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function postJson(url, body) {
  const resp = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
  });
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error(messageOf(data, resp.status));
  return data;
}

export async function getJson(url) {
  const resp = await fetch(url);
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error(messageOf(data, resp.status));
  return data;
}
