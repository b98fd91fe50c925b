"""Interaction latency of every playground, and the weight and load time of every page.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/interaction_latency.py [--inputs 30] [--only SLUG,...]
        [--baseline-ref REF] [--skip-weight] [--write]

Starts the embedded lab as `make run` does (`collectstatic`, then `manage.py lab all`, DEBUG off)
in a temporary folder and drives Debian's Chromium (headless, 1280×900):

1. Interaction latency: on each playground's own page (the list comes from peftlab/pages/chapters.py),
   for each of its sliders (or, without one, its first select or number box), `--inputs` steps,
   each one step from the last (turning back at the ends), each an `input` then a `change` event
   as a click on the slider's track or an arrow key fires them (some sliders only relabel on
   `input` and recompute on `change`). Per step: from dispatching `input` to the playground
   redrawn, that is the last Plotly call it caused having resolved (Plotly draws inside the call;
   its promise resolves after `plotly_afterplot`), or, for a part drawn without Plotly, its last
   DOM change; an API fetch the step causes is included (a step is over once nothing is in
   flight and nothing changed for `--quiet-ms`). The pixels follow at the next frame.
   With `--baseline-ref REF` (say the commit a branch started from) every control is measured
   twice in the same run, side by side: a second browser context gets static/js/ as it was at REF
   (`git show REF:static/js/...`, served in place of the lab's own files; the server, its API and
   the templates are the same), and the steps alternate, one on the baseline's page, one on the
   current page, so that the machine's load hits both alike.
2. Page weight: each chapter page and each playground page opened in a fresh browser context
   (empty cache, a learner's first visit). Chrome's DevTools protocol counts every request with
   its bytes on the wire (compressed, headers included) and decoded. A chapter frames its
   playgrounds lazily: it is weighed at its `load` event, then again once scrolled to the end
   and every framed playground is ready.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.report import PERFORMANCE, browser_machine, p95, write_section  # noqa: E402
from peftlab.apps import PLOTLY  # noqa: E402
from tests.support.browsing import CHROMIUM_ARGS
from tests.support.labstack import Lab

HEADING = "## Interaction latency and page weight"
VIEWPORT = {"width": 1280, "height": 900}
PLAYGROUND_TEMPLATES = ROOT / "templates" / "simulations" / "playgrounds"

# Runs in every page (and frame) before its scripts: counts fetches in flight and DOM changes.
PAGE_HOOKS = """
(() => {
  const B = window.__bench = { inflight: 0, fetches: [], plots: 0, pendingPlots: 0, lastActivity: 0,
                               lastPlot: 0, lastMutation: 0, calls: [], mutated: [] };
  const touch = () => { B.lastActivity = performance.now(); };
  const nativeFetch = window.fetch;
  window.fetch = function (...args) {
    const started = performance.now();
    B.inflight++;
    const answer = nativeFetch.apply(this, args);
    answer.finally(() => {
      B.inflight--;
      B.fetches.push({ url: String(args[0]), ms: performance.now() - started, at: started });
      touch();
    }).catch(() => {});
    return answer;
  };
  // The nodes changed are kept (cheaply) and sorted into charts once a step is over.
  new MutationObserver((records) => {
    B.lastMutation = performance.now(); touch();
    for (const r of records) B.mutated.push(r.target);
  })
    .observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
})();
"""

# Once Plotly is loaded: when each Plotly call the page makes has finished drawing.
PLOT_HOOK = """() => {
  if (!window.Plotly || Plotly.__benchWrapped) return;
  const B = window.__bench;
  for (const name of ["newPlot", "react", "restyle", "relayout", "update", "extendTraces", "prependTraces",
                      "addTraces", "deleteTraces", "redraw", "animate", "purge"]) {
    const native = Plotly[name];
    if (typeof native !== "function") continue;
    Plotly[name] = function (...args) {
      B.plots++; B.pendingPlots++;
      const done = () => { B.pendingPlots--; B.lastPlot = performance.now(); B.lastActivity = B.lastPlot; };
      const target = typeof args[0] === "string" ? args[0] : (args[0] && args[0].id) || "?";
      const started = performance.now();
      let result;
      try { result = native.apply(this, args); } catch (err) { done(); throw err; }
      B.calls.push({ call: `${name}(#${target})`, ms: performance.now() - started });
      Promise.resolve(result).then(done, done);
      return result;
    };
  }
  Plotly.__benchWrapped = true;
}"""

# One input event on `el`, and everything it causes: [latency ms, fetches, their ms, Plotly calls].
ONE_INPUT = """async ([selector, value, quietMs, timeoutMs]) => {
  const B = window.__bench;
  const el = document.querySelector(selector);
  const busy = () => B.inflight > 0 || B.pendingPlots > 0 || document.querySelector('[data-loading="1"]');
  // Start from a quiet page.
  while (busy()) await new Promise((r) => setTimeout(r, 5));
  const fetchesBefore = B.fetches.length, plotsBefore = B.plots, callsBefore = B.calls.length;
  B.lastPlot = B.lastMutation = 0;
  B.mutated = [];
  const t0 = performance.now();
  el.value = value;
  // One step as a click on the track or an arrow key makes it: `input`, then `change` (some
  // sliders only relabel on `input` and recompute on `change`, when a drag is released).
  el.dispatchEvent(new Event("input", { bubbles: true }));
  el.dispatchEvent(new Event("change", { bubbles: true }));
  const handled = performance.now();
  B.lastActivity = Math.max(B.lastActivity, handled);
  let timedOut = false;
  for (;;) {
    await new Promise((r) => setTimeout(r, 5));
    const now = performance.now();
    if (!busy() && now - B.lastActivity >= quietMs) break;
    if (now - t0 > timeoutMs) { timedOut = true; break; }
  }
  const plots = B.plots - plotsBefore;
  const end = plots ? Math.max(B.lastPlot, handled) : Math.max(B.lastMutation, handled);
  const fetches = B.fetches.slice(fetchesBefore);
  const calls = B.calls.slice(callsBefore);
  // The charts the step changed: those it made a Plotly call on, and those whose nodes changed
  // (a chart can be redrawn in part without a Plotly call of its own).
  const charts = new Set(calls.map((c) => c.call.slice(c.call.indexOf("(") + 2, -1)));
  for (const node of B.mutated) {
    const chart = (node.nodeType === 1 ? node : node.parentElement)?.closest(".js-plotly-plot");
    if (chart) charts.add(chart.id || "?");
  }
  B.mutated = [];
  return { ms: end - t0, handler: handled - t0, plots, charts: charts.size, changed: plots > 0 || B.lastMutation > 0,
           fetches: fetches.length, fetchMs: fetches.map((f) => f.ms),
           fetchUrls: fetches.map((f) => new URL(f.url, location.href).pathname),
           calls, timedOut };
}"""

# The controls an interaction measurement uses: every visible slider of the playground, else its
# first visible select or number box (outside the lesson-link box).
CONTROLS = """() => {
  const visible = (el) => el.offsetParent !== null && !el.disabled && !el.closest("#lesson-link");
  const all = [...document.querySelectorAll("main input, main select")].filter(visible);
  const sliders = all.filter((el) => el.type === "range");
  const main = all.filter((el) => el.tagName === "SELECT" || el.type === "number");
  const chosen = sliders.length ? sliders : main.slice(0, 1);
  return chosen.map((el) => ({
    selector: el.id ? `#${CSS.escape(el.id)}` : null, kind: el.tagName === "SELECT" ? "select" : el.type,
    value: el.value, min: el.min, max: el.max, step: el.step,
    options: el.tagName === "SELECT" ? [...el.options].filter((o) => !o.disabled).map((o) => o.value) : [],
  })).filter((c) => c.selector);
}"""


# --- the machine and the numbers --------------------------------------------------------------
def kb(n: float) -> str:
    return f"{n / 1024:,.0f}"


# --- the lab ----------------------------------------------------------------------------------
def start_lab(folder: Path) -> Lab:
    lab = Lab(folder)
    lab.env.pop("PEFTLAB_SSE_POLL_MS", None)  # the lab's own default, not the test labs'
    lab.manage("migrate", "--noinput")
    lab.manage("collectstatic", "--noinput", "--verbosity", "0")  # as `make run` does
    lab.start("all")
    return lab


def course():
    """(chapters, playgrounds) as the app lists them: live playgrounds only."""
    from django.conf import settings

    # The course list needs only BASE_DIR (a playground is live once its template exists); the
    # lab's own settings would create a var/ folder here.
    if not settings.configured:
        settings.configure(BASE_DIR=ROOT)
    from peftlab.pages.chapters import CHAPTERS

    playgrounds = [pg for ch in CHAPTERS for pg in ch.playgrounds if pg.live]
    return CHAPTERS, playgrounds


def root_selector(slug: str) -> str:
    """The element a playground marks data-ready on (its template's `…-root`)."""
    found = re.search(r'id="([\w-]+-root)"', (PLAYGROUND_TEMPLATES / f"{slug}.html").read_text())
    return f"#{found.group(1)}" if found else "main [data-ready]"


def ready_js(root: str) -> str:
    """A predicate that returns the time the playground is ready (and idle), else false."""
    return (
        f"() => {{ const r = document.querySelector('{root}'); return r && r.dataset.ready === '1' "
        f"&& !document.querySelector('[data-loading=\"1\"]') ? performance.now() : false; }}"
    )


# --- 1. interaction latency -------------------------------------------------------------------
def input_values(control: dict, count: int) -> list[str]:
    """`count` values, each one step from the last, turning back at the ends (a drag)."""
    if control["kind"] == "select":
        options = control["options"]
        start = options.index(control["value"]) if control["value"] in options else 0
        return [options[(start + i + 1) % len(options)] for i in range(count)] if len(options) > 1 else []
    step = float(control["step"]) if control["step"] not in ("", "any") else 1.0
    lo = float(control["min"]) if control["min"] != "" else None
    hi = float(control["max"]) if control["max"] != "" else None
    value, direction, out = float(control["value"] or 0), 1, []
    for _ in range(count):
        nxt = value + direction * step
        if (hi is not None and nxt > hi + 1e-9) or (lo is not None and nxt < lo - 1e-9):
            direction = -direction
            nxt = value + direction * step
        if (hi is not None and nxt > hi + 1e-9) or (lo is not None and nxt < lo - 1e-9):
            return []  # a slider with one position
        value = nxt
        out.append(f"{value:g}" if step != int(step) else str(int(round(value))))
    return out


def open_playground(context, pg):
    page = context.new_page()
    page.goto(f"/playgrounds/{pg.slug}/")
    page.wait_for_function(ready_js(root_selector(pg.slug)), timeout=120_000, polling=50)
    page.evaluate(PLOT_HOOK)
    return page


def interactions(context, pg, count: int, quiet_ms: int, baseline=None) -> list[dict]:
    """Each control's steps on the current page, and with a `baseline` context the same steps on
    the baseline's page, alternating one step there, one here."""
    page = open_playground(context, pg)
    other = open_playground(baseline, pg) if baseline else None
    out = []
    for control in page.evaluate(CONTROLS):
        values = input_values(control, count)
        if not values:
            continue
        events, before = [], []
        for v in values:
            if other:
                before.append(other.evaluate(ONE_INPUT, [control["selector"], v, quiet_ms, 60_000]))
            events.append(page.evaluate(ONE_INPUT, [control["selector"], v, quiet_ms, 60_000]))
        out.append({"control": control, "events": events, "before": before})
    page.close()
    if other:
        other.close()
    return out


def git_file(ref: str, path: str) -> bytes | None:
    found = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True)
    return found.stdout if found.returncode == 0 else None


def baseline_context(browser, base_url: str, ref: str):
    """A browser context that gets static/js/ as it was at `ref` in place of the lab's own."""
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT)
    context.add_init_script(PAGE_HOOKS)
    cache: dict[str, bytes | None] = {}

    def serve(route):
        name = route.request.url.split("/static/", 1)[1].split("?")[0]
        if name not in cache:
            cache[name] = git_file(ref, f"static/{name}")
        if cache[name] is None:
            route.continue_()
        else:
            route.fulfill(status=200, body=cache[name], content_type="text/javascript; charset=utf-8")

    context.route("**/static/js/**", serve)
    return context


def describe_interactions(pg, measured: list[dict]) -> list[dict]:
    """A row per control: median and p95 latency, and what the events did."""
    rows = []
    for m in measured:
        ev = m["events"]
        ms = [e["ms"] for e in ev]
        fetch_ms = [f for e in ev for f in e["fetchMs"]]
        calls: dict[str, list[float]] = {}
        for e in ev:
            for c in e["calls"]:
                calls.setdefault(c["call"], []).append(c["ms"])
        slowest = max(calls.items(), key=lambda kv: statistics.median(kv[1]), default=None)
        # The targets: p95 at most 16 ms (one frame) for a control that changes one chart
        # (or none: a DOM change), at most 33 ms (two frames) for one that changes several.
        # What a control changes does not depend on how it is drawn: the most charts one step
        # changed, before or after.
        charts = max((e["charts"] for e in ev + m["before"]), default=0)
        before = [e["ms"] for e in m["before"]]
        rows.append(
            {
                "pid": pg.pid,
                "slug": pg.slug,
                "control": m["control"]["selector"],
                "kind": m["control"]["kind"],
                "n": len(ev),
                "median": statistics.median(ms),
                "p95": p95(ms),
                "charts": charts,
                "target": 16 if charts <= 1 else 33,
                "before_median": statistics.median(before) if before else None,
                "before_p95": p95(before) if before else None,
                "handler": statistics.median(e["handler"] for e in ev),
                "fetches": sum(e["fetches"] for e in ev) / len(ev),
                "fetch_median": statistics.median(fetch_ms) if fetch_ms else None,
                "fetch_paths": sorted({u.split("?")[0] for e in ev for u in e["fetchUrls"]}),
                "plots": sum(e["plots"] for e in ev) / len(ev),
                # The Plotly call that takes longest (its synchronous part, median over the steps).
                "slowest": f"`{slowest[0]}` {statistics.median(slowest[1]):.1f}" if slowest else "—",
                "unchanged": sum(not e["changed"] for e in ev),
                "timed_out": sum(e["timedOut"] for e in ev),
            }
        )
    return rows


# --- 2. page weight ---------------------------------------------------------------------------
class Traffic:
    """Every request of a page (and its same-origin frames) from the DevTools protocol."""

    def __init__(self, context, page):
        self.requests: dict[str, dict] = {}
        cdp = context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.dataReceived", self._data)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.send("Network.enable")

    def _sent(self, e):
        self.requests.setdefault(
            e["requestId"],
            {"url": e["request"]["url"], "decoded": 0, "wire": 0, "encoding": "", "cached": False, "cache_control": ""},
        )

    def _response(self, e):
        r = self.requests.setdefault(e["requestId"], {"url": e["response"]["url"], "decoded": 0, "wire": 0})
        headers = {k.lower(): v for k, v in e["response"]["headers"].items()}
        r.update(
            status=e["response"]["status"],
            encoding=headers.get("content-encoding", ""),
            cache_control=headers.get("cache-control", ""),
            cached=e["response"].get("fromDiskCache", False) or e["response"].get("fromMemoryCache", False),
        )

    def _data(self, e):
        if e["requestId"] in self.requests:
            self.requests[e["requestId"]]["decoded"] += e["dataLength"]

    def _finished(self, e):
        if e["requestId"] in self.requests:
            self.requests[e["requestId"]]["wire"] = e["encodedDataLength"]

    def totals(self) -> dict:
        done = [r for r in self.requests.values() if "status" in r]
        plotly = [r for r in done if "plotly" in r["url"]]
        return {
            "requests": len(done),
            "wire": sum(r["wire"] for r in done),
            "decoded": sum(r["decoded"] for r in done),
            "plotly_loads": len(plotly),
            "plotly_wire": sum(r["wire"] for r in plotly),
        }


TIMING = """() => { const n = performance.getEntriesByType("navigation")[0];
  return { dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd }; }"""

# Plotly charts on the page and in its frames.
CHARTS = """() => [document, ...[...document.querySelectorAll("iframe")].map((f) => f.contentDocument)
  .filter(Boolean)].reduce((n, d) => n + d.querySelectorAll(".js-plotly-plot").length, 0)"""


def weigh(browser, base_url: str, path: str, root: str | None, frames: bool) -> dict:
    """A first visit to `path`: traffic at `load`, at ready, and (chapters) with every frame loaded."""
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT)
    page = context.new_page()
    traffic = Traffic(context, page)
    page.goto(path, wait_until="load")
    timing = page.evaluate(TIMING)
    at_load = traffic.totals()
    out = {"path": path, **timing, "at_load": at_load}
    if root:
        out["ready"] = page.wait_for_function(ready_js(root), timeout=120_000, polling="raf").json_value()
    if frames:
        # Scroll down a screen at a time, as a reader does, so that every lazy frame loads.
        height = page.evaluate("() => document.body.scrollHeight")
        for y in range(0, height + VIEWPORT["height"], VIEWPORT["height"] // 2):
            page.evaluate(f"() => window.scrollTo(0, {y})")
            page.wait_for_timeout(100)
        page.wait_for_function(
            """() => [...document.querySelectorAll('iframe')].every((f) => {
            const d = f.contentDocument; const r = d && d.querySelector('[id$="-root"], [data-ready]');
            return r && r.dataset.ready === '1' && !d.querySelector('[data-loading="1"]'); })""",
            timeout=180_000,
            polling=100,
        )
        out["frames_ready"] = page.evaluate("() => performance.now()")
        out["frames"] = page.evaluate("() => document.querySelectorAll('iframe').length")
    page.wait_for_load_state("networkidle")
    out["all"] = traffic.totals()
    out["charts"] = page.evaluate(CHARTS)
    context.close()
    return out


# --- the report -------------------------------------------------------------------------------
def section(
    desc: str, load: tuple, inter_rows, skipped, weights, static_check: dict, args, kept_weight: str = ""
) -> str:
    lines = [
        HEADING,
        "",
        f"`bench/interaction_latency.py`: the embedded lab served as `make run` serves it (collectstatic, "
        f"`manage.py lab all`, DEBUG off), in headless Chromium, 1280×900. {desc}. Load average "
        f"{load[0]:.1f} before, {load[1]:.1f} after.",
    ]
    baseline = args.baseline_ref and any(r["before_p95"] is not None for r in inter_rows)
    if inter_rows or skipped:
        lines += [
            "",
            f"Interaction latency: on each playground's own page, {args.inputs} steps per slider, each one "
            f"step from the last, each an `input` then a `change` event (what a click on the track or an arrow "
            f"key fires; some sliders relabel on `input` and recompute on `change`, at a drag's release); "
            f"without a slider, its first select or number box. From dispatching `input` to the playground "
            f"redrawn: its last Plotly call resolved (the call draws; the promise resolves after "
            f"`plotly_afterplot`), or its last DOM change where it draws without Plotly, API fetches included. "
            f'Milliseconds. "Handler" is the synchronous part (the event\'s listeners, Plotly drawing inside '
            f'them). "Charts": the most charts one step changed, before or after (a Plotly call on it, or its '
            f'nodes changed: a heatmap\'s pixels redrawn without a Plotly call count too). "Fetches / step" '
            f"counts every request that ended within a step, those a page makes in the background for a later "
            f"step too; the latency counts only what the step waited for. "
            f"Target (issue 22, item 7): p95 at most 16 ms (one frame) for a control that changes one chart "
            f"(or none), at most 33 ms (two frames) otherwise.",
        ]
        if baseline:
            lines += [
                "",
                f'Before and after, in this one run: "before" is static/js/ as at commit {args.baseline_label} '
                f"(`--baseline-ref {args.baseline_ref}`), served to a second browser context in place of the current files "
                f"(same server, API and templates); the steps alternate between its page and the current one, "
                f"so that the machine's load hits both alike. The other columns are the current page's.",
            ]
        head = "| playground | control | "
        head += "before median | before p95 | " if baseline else ""
        head += (
            "median | p95 | charts | target | "
            + ("met (before) | " if baseline else "met | ")
            + "handler (median) | fetches / step | fetch (median ms, API) "
            "| Plotly calls / step | slowest Plotly call (median ms) |"
        )
        lines += [
            "",
            head,
            "|---|---|" + ("---:|---:|" if baseline else "") + "---:|---:|---:|---:|---|" + "---:|" * 4 + "---|",
        ]
    for r in inter_rows:
        note = (f" ({r['unchanged']} of {r['n']} redrew nothing)" if r["unchanged"] else "") + (
            f" ({r['timed_out']} timed out)" if r["timed_out"] else ""
        )
        fetch = "—" if r["fetch_median"] is None else f"{r['fetch_median']:.0f} ({', '.join(r['fetch_paths'])})"
        before = f"{r['before_median']:.1f} | {r['before_p95']:.1f} | " if baseline else ""
        met = "yes" if r["p95"] <= r["target"] else "**no**"
        if baseline:
            met += " (yes)" if r["before_p95"] <= r["target"] else " (no)"
        lines.append(
            f"| {r['pid']} {r['slug']} | `{r['control']}` ({r['kind']}){note} | {before}{r['median']:.1f} | "
            f"**{r['p95']:.1f}** | {r['charts']} | {r['target']} | {met} | {r['handler']:.1f} | {r['fetches']:.1f} | "
            f"{fetch} | {r['plots']:.1f} | {r['slowest']} |"
        )
    blanks = 11 + (2 if baseline else 0)
    for pid, slug, why in skipped:
        lines.append(f"| {pid} {slug} | {why} |" + " — |" * blanks)
    if inter_rows:
        missed = [f"{r['pid']} `{r['control']}`" for r in inter_rows if r["p95"] > r["target"]]
        before = f" ({sum(r['before_p95'] <= r['target'] for r in inter_rows)} before)" if baseline else ""
        lines += [
            "",
            f"Controls that meet their target: {len(inter_rows) - len(missed)} of {len(inter_rows)}{before}"
            + (f"; missed: {', '.join(missed)}." if missed else "."),
        ]
    if kept_weight:
        lines += ["", kept_weight.rstrip()]
    if weights:
        lines += [
            "",
            "Page weight and load time: a first visit (fresh browser context, empty cache). Bytes on the "
            "wire (compressed, headers included) and decoded, in KiB; times in ms from navigation start; "
            '"ready": the playground\'s root says it has drawn. A chapter frames its playgrounds lazily: '
            '"a → b" is what its `load` event had fetched → after scrolling to the end with every framed '
            'playground ready. "Plotly": how many times the page and its frames requested Plotly\'s bundle '
            '(the browser\'s cache answers all but the first) and its bytes on the wire; "charts": Plotly '
            "charts drawn.",
            "",
            "| page | requests | wire KiB | decoded KiB | Plotly (requests, wire KiB) | charts | DOMContentLoaded "
            "| load | ready |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    for w in weights:
        a, t = w["at_load"], w["all"]
        if "frames" in w:
            size = (
                f"{a['requests']} → {t['requests']}",
                f"{kb(a['wire'])} → {kb(t['wire'])}",
                f"{kb(a['decoded'])} → {kb(t['decoded'])}",
            )
            ready = f"{w['frames_ready']:.0f} ({w['frames']} frames, scrolled)"
        else:
            size = (str(t["requests"]), kb(t["wire"]), kb(t["decoded"]))
            ready = f"{w['ready']:.0f}" if "ready" in w else "—"
        plotly = f"{t['plotly_loads']}, {kb(t['plotly_wire'])}" if t["plotly_loads"] else "—"
        lines.append(
            f"| {w['path']} | {size[0]} | {size[1]} | {size[2]} | {plotly} | {w['charts']} | "
            f"{w['dcl']:.0f} | {w['load']:.0f} | {ready} |"
        )
    unused = [w["path"] for w in weights if w["all"]["plotly_loads"] and not w["charts"]]
    if weights:
        lines += ["", "Pages that load Plotly but draw no chart with it: " + (", ".join(unused) or "none") + "."]
    lines += [
        "",
        "Compression and caching, as served to a browser that accepts gzip and brotli: "
        + "; ".join(f"{k}: {v}" for k, v in static_check.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


WEIGHT_START = "Page weight and load time:"
WEIGHT_END = "Compression and caching,"


def kept_weight_table() -> str:
    """The page-weight half of the section as the document has it (a run with --skip-weight
    rewrites only the interaction half), with a line that says it was not measured again and on
    what machine it was."""
    text = PERFORMANCE.read_text() if PERFORMANCE.exists() else ""
    start = text.find(HEADING)
    if start < 0:
        return ""
    end = text.find("\n## ", start + len(HEADING))
    body = text[start : end if end >= 0 else len(text)]
    a, b = body.find(WEIGHT_START), body.find(WEIGHT_END)
    if a < 0 or b < a:
        return ""
    kept = re.search(re.escape(KEPT_NOTE) + r" \(measured with (.*)\)\.\n", body)
    machine = re.search(r"in headless Chromium, 1280×900\. (.*?)\n", body)
    measured = kept.group(1) if kept else machine.group(1).rstrip(".") if machine else "an earlier run"
    return f"{KEPT_NOTE} (measured with {measured}).\n\n" + body[a:b].rstrip() + "\n"


KEPT_NOTE = (
    "Page weight was not measured again in this run (`--skip-weight`): its table below is the last one "
    "measured, kept as it was"
)


def check_compression(lab: Lab) -> dict:
    """What the server answers a browser that accepts gzip and brotli."""
    import httpx

    out = {}
    for label, path in (
        ("HTML page", "/chapters/1/"),
        ("Plotly's bundle", f"/static/{PLOTLY}"),
        ("lab.css", "/static/css/lab.css"),
        ("an API answer", "/api/methods"),
    ):
        r = httpx.get(lab.base_url + path, headers={"Accept-Encoding": "gzip, br"})
        out[label] = (
            f"{r.headers.get('content-encoding', 'not compressed')}, "
            f"{len(r.content) / 1024:,.0f} KiB, Cache-Control: {r.headers.get('cache-control', 'none')}"
        )
    gz = Path(lab.var_dir) / "staticfiles" / f"{PLOTLY}.gz"
    out["collectstatic wrote its .gz"] = f"{gz.stat().st_size / 1024:,.0f} KiB" if gz.exists() else "no"
    return out


def main():
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=30, help="input events per control")
    parser.add_argument(
        "--quiet-ms",
        type=int,
        default=150,
        help="an event is over once nothing changed for this long and nothing is in flight",
    )
    parser.add_argument("--only", default="", help="comma-separated playground slugs (default: every one)")
    parser.add_argument("--chapters", default="", help="comma-separated chapter numbers (default: every one)")
    parser.add_argument("--skip-weight", action="store_true")
    parser.add_argument("--skip-interaction", action="store_true")
    parser.add_argument(
        "--baseline-ref",
        default="",
        help="also measure every control with static/js/ as at this git ref (before and after, in one run)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"put the section into {PERFORMANCE.relative_to(ROOT)} (with --skip-weight, keeping its page-weight table)",
    )
    args = parser.parse_args()
    if args.baseline_ref:
        found = subprocess.run(
            ["git", "log", "-1", "--format=%h of %cs", args.baseline_ref], cwd=ROOT, capture_output=True, text=True
        )
        if found.returncode:
            parser.error(f"--baseline-ref: no such commit: {args.baseline_ref}")
        args.baseline_label = found.stdout.strip()

    chapters, playgrounds = course()
    if args.only:
        wanted = args.only.split(",")
        playgrounds = [pg for pg in playgrounds if pg.slug in wanted]
    if args.chapters:
        chapters = [ch for ch in chapters if str(ch.number) in args.chapters.split(",")]
    elif args.only:
        chapters = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        lab = start_lab(Path(folder))
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            load = [os.getloadavg()[0]]
            static_check = check_compression(lab)
            inter_rows, skipped = [], []
            if not args.skip_interaction:
                context = browser.new_context(base_url=lab.base_url, viewport=VIEWPORT)
                context.add_init_script(PAGE_HOOKS)
                baseline = baseline_context(browser, lab.base_url, args.baseline_ref) if args.baseline_ref else None
                for pg in playgrounds:
                    measured = interactions(context, pg, args.inputs, args.quiet_ms, baseline)
                    rows = describe_interactions(pg, measured)
                    if not rows:
                        skipped.append((pg.pid, pg.slug, "no continuous input"))
                    for r in rows:
                        before = f"before p95 {r['before_p95']:.1f}, " if r["before_p95"] is not None else ""
                        print(
                            f"{pg.pid} {pg.slug} {r['control']}: {before}median {r['median']:.1f}, "
                            f"p95 {r['p95']:.1f} ms (target {r['target']}), {r['fetches']:.1f} fetches/step, "
                            f"slowest {r['slowest']}",
                            file=sys.stderr,
                        )
                    inter_rows += rows
                context.close()
                if baseline:
                    baseline.close()
            weights = []
            if not args.skip_weight:
                # The home page and the training page too, unless the run is limited to some pages.
                pages = [] if args.only or args.chapters else [("/", None, False), ("/train/", "#train-root", False)]
                pages += [(f"/chapters/{ch.number}/", None, True) for ch in chapters]
                pages += [(f"/playgrounds/{pg.slug}/", root_selector(pg.slug), False) for pg in playgrounds]
                for path, root, frames in pages:
                    weights.append(w := weigh(browser, lab.base_url, path, root, frames))
                    print(
                        f"{path}: {w['all']['requests']} requests, {kb(w['all']['wire'])} KiB on the wire, "
                        f"{kb(w['all']['decoded'])} KiB decoded, load {w['load']:.0f} ms",
                        file=sys.stderr,
                    )
            load.append(os.getloadavg()[0])
            desc = browser_machine(browser)
        finally:
            browser.close()
            lab.stop_all()
    kept = kept_weight_table() if args.write and not weights and not args.only and not args.chapters else ""
    text = section(desc, tuple(load), inter_rows, skipped, weights, static_check, args, kept)
    print(text)
    if args.write:
        write_section(text, HEADING)


if __name__ == "__main__":
    main()
