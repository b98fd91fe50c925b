// What the playgrounds' pages do the same way: fetch their data (only the newest answer counts),
// draw charts with a chosen point and redraw only what a change of settings touches.
import { messageOf } from "./lab.js";

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

// Plotly.react with the axes' tick labels drawn without Plotly's overflow check. Its default for a
// linear axis, ticklabeloverflow "hide past div", measures every tick label again after drawing
// each one (quadratic: about half of a 16 × 16 heatmap's redraw); "allow" skips that. Use it for
// charts whose tick labels stay inside the chart (a chart with a label past its edge keeps
// Plotly.react, where Plotly hides that label). An axis of the layout may still set its own.
const AXES = { ticklabeloverflow: "allow" };
const TEMPLATE = { layout: { xaxis: AXES, yaxis: AXES } };
export function react(el, traces, layout, config) {
  return Plotly.react(el, traces, { template: TEMPLATE, ...layout }, config);
}

// A chart's chosen point (the slider's value on a curve) as a layout shape rather than a trace: a
// ring of `radius` pixels anchored at (x, y) in data units. Moving it is Plotly.relayout of the
// shapes alone (about 0.2 ms in headless Chromium here) instead of a redraw of the chart (7-20
// ms), for a slider that moves only the ring. The ring is a 16-sided path: Plotly 4.1's circle
// shape sized in pixels is drawn off its anchor on a log axis, a path is not.
const RING_SIDES = 16;
function ringPath(radius) {
  const corners = Array.from({ length: RING_SIDES }, (_, k) => {
    const a = (2 * Math.PI * k) / RING_SIDES;
    return `${(radius * Math.cos(a)).toFixed(2)},${(radius * Math.sin(a)).toFixed(2)}`;
  });
  return `M${corners.join("L")}Z`;
}
// `fill`: a colour fills it (a dot). No legend entry: a shape in the legend makes every move of it
// redraw the whole chart (10 ms instead of 0.1 on P14's error curves).
export function ring(x, y, { radius = 7, color = "#222", width = 2, fill = null } = {}) {
  return {
    type: "path", xref: "x", yref: "y", xsizemode: "pixel", ysizemode: "pixel", xanchor: x, yanchor: y,
    path: ringPath(radius), line: { color, width }, layer: "above",
    ...(fill ? { fillcolor: fill } : {}),
  };
}

// Redraw only the layout shapes of the chart `el` (a ring moved, say): nothing is recomputed.
export function moveShapes(el, shapes) {
  return Plotly.relayout(el, { shapes });
}

// Redraw what a change of settings touches. Each part is [draw, keys] or [draw, keys, move,
// moveKeys]: `draw` runs when a setting in `keys` changed, else `move` (a cheaper update, such as
// moving a ring) when one in `moveKeys` did. `changed` null: every part is drawn.
export function redrawChanged(parts, changed) {
  const touches = (keys) => !changed || keys.some((k) => changed.includes(k));
  for (const [draw, keys, move, moveKeys] of parts) {
    if (touches(keys)) draw();
    else if (move && touches(moveKeys)) move();
  }
}

// Redraw the heatmap `el` (its first trace) with the values `z`, where only its pixels change.
// `fixed` names everything else the figure depends on (its colour range, its labels): when it is
// as at the last full draw and z has the shape the chart shows, the axes, colour bar and labels
// stay, and only the heatmap's image is computed and drawn again (Plotly's own heatmap code, on
// its own layer: about 1 ms, where Plotly.react, restyle or redraw draw the whole chart again,
// 7-10 ms). Otherwise (the first draw, a new shape: the axes change) `draw()` draws the whole
// figure. Returns a promise, resolved once drawn. The fast path reaches into Plotly's internals
// (pinned in package-lock.json; a browser test checks it draws what Plotly.react draws): if
// they are not what it expects, it draws the whole figure instead.
export function redrawHeatmap(el, z, fixed, draw) {
  const gd = typeof el === "string" ? document.getElementById(el) : el;
  const key = `${fixed}|${z.length}×${z[0]?.length}`;
  if (gd.dataset.heatmapKey === key && heatmapPixels(gd, z)) return Promise.resolve(gd);
  gd.dataset.heatmapKey = key;
  return draw();
}

function heatmapPixels(gd, z) {
  const full = gd._fullData?.[0];
  const module = full?._module;
  const plotinfo = gd._fullLayout?._plots?.[full?.xaxis + full?.yaxis];
  const layer = plotinfo?.plot?.select(".heatmaplayer");
  if (full?.type !== "heatmap" || !module?.calc || !module?.plot || !gd.calcdata || !layer || layer.empty()) {
    return false;
  }
  try {
    gd.data[0].z = z;
    full.z = z;
    const cd = module.calc(gd, full);
    cd[0].trace = full;
    gd.calcdata[0] = cd;
    module.plot(gd, plotinfo, [cd], layer);
    return true;
  } catch (err) {
      console.warn("heatmap pixels: a whole redraw instead", err);
    return false;
  }
}

// Recolour the bars of the chart `el` where nothing else changes: `styles` has, for each of its
// first traces (bar traces, one colour or opacity per bar), `{ color, opacity }` (arrays; either
// may be left out), and `fixed` names everything else the figure depends on. When it is as at
// the last full draw, only the bars' fills are set again (Plotly's own bar styling: under 1 ms;
// a restyle of an array of colours, like Plotly.react, draws the whole chart again: 7-10 ms).
// Otherwise, or where a trace's first bar changes (a legend's swatch shows it), `draw()` draws the
// whole figure. Returns a promise, resolved once drawn. Like redrawHeatmap, it reaches into
// Plotly's internals, and draws the whole figure if they are not what it expects.
export function recolourBars(el, styles, fixed, draw) {
  const gd = typeof el === "string" ? document.getElementById(el) : el;
  const key = `${fixed}|${styles.map((t) => (t.color ?? t.opacity).length).join(",")}`;
  if (gd.dataset.barsKey === key && barStyles(gd, styles)) return Promise.resolve(gd);
  gd.dataset.barsKey = key;
  return draw();
}

// Plotly keeps a bar's own colour and opacity in its calcdata point (mc, mo).
const BAR_STYLE = { color: "mc", opacity: "mo" };

function barStyles(gd, styles) {
  const traces = styles.map((style, i) => [style, gd._fullData?.[i], gd.calcdata?.[i]]);
  const usable = traces.every(([style, full, cd]) => full?.type === "bar" && full._module?.style && cd &&
    Object.entries(style).every(([k, values]) => BAR_STYLE[k] && cd.length === values.length &&
      cd[0][BAR_STYLE[k]] === values[0]));
  if (!usable) return false;
  try {
    traces.forEach(([style, full, cd], i) => {
      for (const [k, values] of Object.entries(style)) {
        gd.data[i].marker[k] = values;
        full.marker[k] = values;
        cd.forEach((d, j) => { d[BAR_STYLE[k]] = values[j]; });
      }
    });
    gd._fullData[0]._module.style(gd);
    return true;
  } catch (err) {
    console.warn("bar colours: a whole redraw instead", err);
    return false;
  }
}
