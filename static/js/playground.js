// What every playground's page does the same way: fetch its data (only the newest answer
// counts) and turn an API error into a sentence.

// The API answers {"error": "..."}; ninja's own default is {"detail": ...}: accept both.
export function messageOf(body, status) {
  const msg = body && (body.error ?? body.detail);
  if (typeof msg === "string") return msg;
  if (Array.isArray(msg)) return msg.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  return `The server answered ${status}.`;
}

// A fetcher for one playground: each call aborts the one before it, resolves to the JSON body,
// to null when a newer call superseded it, and throws the server's message on an error.
// root.dataset.loading is "1" while a call is in flight (tests wait on it).
export function latestFetcher(root) {
  let seq = 0;
  let inFlight = null;
  return async function fetchLatest(url) {
    const mine = ++seq;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    root.dataset.loading = "1";
    try {
      const resp = await fetch(url, { signal: inFlight.signal });
      const body = await resp.json().catch(() => null);
      if (!resp.ok) throw new Error(messageOf(body, resp.status));
      return mine === seq ? body : null;
    } catch (err) {
      if (err.name === "AbortError") return null;
      throw err;
    } finally {
      if (mine === seq) root.dataset.loading = "0";
    }
  };
}
