// The dashboard's panels: each calls this server with fetch() and shows what came back.
// Plain JavaScript, no build step and no library.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

const REASONS = {
  200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request",
  401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
  502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
};

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// One request: the response, its decoded body (JSON when it is JSON) and the milliseconds.
// credentials "omit" by default: the demos answer an anonymous visitor, signed in or not
// (a signed-in user would bypass the cache, for instance).
async function call(url, options = {}) {
  const started = performance.now();
  const response = await fetch(url, { credentials: "omit", cache: "no-store", ...options });
  const text = await response.text();
  const ms = Math.round(performance.now() - started);
  let body = text;
  if ((response.headers.get("Content-Type") || "").includes("json") && text) {
    body = JSON.parse(text);
  }
  return { response, body, ms };
}

function el(tag, { dataset = {}, ...props } = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  Object.assign(node.dataset, dataset);
  for (const child of children) node.append(child);
  return node;
}

function badge(status) {
  const kind = status < 300 ? "b-ok" : status === 429 || status === 503 ? "b-warn" : "b-bad";
  return el("span", { className: `badge ${kind}`, textContent: `${status} ${REASONS[status] || ""}`.trim() });
}

function logLine(list, ...parts) {
  list.prepend(el("li", {}, ...parts));
  while (list.children.length > 30) list.lastChild.remove();
}

async function busy(buttons, work) {
  buttons.forEach((b) => { b.disabled = true; });
  try { await work(); } catch (error) { console.error(error); } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// -- fan-out and timeouts --------------------------------------------------------------

function setupFanout() {
  const panel = $("#panel-fanout");
  const buttons = $$("button", panel);
  const summary = $("#fanout-summary");
  const tbody = $("#fanout-slots tbody");

  async function run(query) {
    summary.textContent = "Calling three upstreams…";
    const { response, body, ms } = await call(`/demo/fanout/?format=json${query}`);
    if (!response.ok) { summary.replaceChildren(badge(response.status)); return; }
    const slowest = Math.max(...Object.values(body.results).map((r) => r.ms), 1);
    tbody.replaceChildren(...Object.entries(body.results).map(([name, slot]) => el("tr",
      { className: slot.ok ? "" : "slot-failed", id: `slot-${name}` },
      el("td", { textContent: name }),
      el("td", { className: "num", textContent: `${slot.delay} s` }),
      el("td", { className: "num", textContent: `${slot.ms} ms` }),
      el("td", { className: slot.ok ? "ok" : "failed", textContent: slot.ok ? slot.data.value : slot.error }),
      el("td", {}, el("div", { className: `bar ${slot.ok ? "" : "failed"}`, style: `width:${(100 * slot.ms) / slowest}%` })),
    )));
    summary.replaceChildren(
      el("strong", { id: "fanout-elapsed", textContent: `${body.elapsed_ms} ms` }),
      ` for three calls whose delays add up to ${body.sequential_ms} ms `,
      `(deadline ${body.timeout_s} s; ${ms} ms in the browser).`,
    );
  }

  async function slow(seconds) {
    const out = $("#slow-result");
    out.textContent = `GET /demo/slow/?seconds=${seconds} …`;
    const { response, body, ms } = await call(`/demo/slow/?seconds=${seconds}`);
    out.replaceChildren(
      `GET /demo/slow/?seconds=${seconds} (timeout = 1 s): `, badge(response.status),
      ` after ${ms} ms` + (response.ok ? "" : ` — “${body.detail}”`),
    );
    out.dataset.status = response.status;
  }

  $("#fanout-run").addEventListener("click", () => busy(buttons, () => run("")));
  $("#fanout-straggler").addEventListener("click", () => busy(buttons, () => run("&orders=3")));
  $("#slow-late").addEventListener("click", () => busy(buttons, () => slow(2)));
  $("#slow-ok").addEventListener("click", () => busy(buttons, () => slow(0.2)));
}

// -- JSON API --------------------------------------------------------------------------

function setupApi() {
  const panel = $("#panel-api");
  const buttons = $$("button", panel);
  const log = $("#api-log");
  const tbody = $("#api-items tbody");
  let created = 1;

  function send(method, url, data) {
    const as = $("input[name=api-as]:checked").value;
    const headers = { Accept: "application/json" };
    if (data !== undefined) headers["Content-Type"] = "application/json";
    if (as === "token") headers.Authorization = "Bearer demo-token";
    if (as === "session") headers["X-CSRFToken"] = csrfToken();
    return call(url, {
      method, headers, body: data === undefined ? undefined : JSON.stringify(data),
      credentials: as.startsWith("session") ? "same-origin" : "omit",
    }).then((result) => {
      const { response, body } = result;
      const notes = [];
      if (response.headers.get("WWW-Authenticate")) notes.push(`WWW-Authenticate: ${response.headers.get("WWW-Authenticate")}`);
      if (response.headers.get("Location")) notes.push(`Location: ${response.headers.get("Location")}`);
      if (!response.ok && body && body.detail) notes.push(body.detail);
      logLine(log, `${method} ${new URL(url, location.href).pathname} as ${as} → `, badge(response.status),
        notes.length ? ` ${notes.join(" · ")}` : "");
      return result;
    });
  }

  async function refresh() {
    const { body } = await call("/api/items/?page_size=50");
    tbody.replaceChildren(...body.results.map((item) => {
      const more = el("button", { className: "small", textContent: "+1", title: "PATCH quantity" });
      more.addEventListener("click", () => busy(buttons, async () => {
        await send("PATCH", item.url || `/api/items/${item.id}/`, { quantity: item.quantity + 1 });
        await refresh();
      }));
      const drop = el("button", { className: "small danger", textContent: "Delete", title: "DELETE" });
      drop.addEventListener("click", () => busy(buttons, async () => {
        await send("DELETE", item.url || `/api/items/${item.id}/`);
        await refresh();
      }));
      return el("tr", { dataset: { name: item.name } },
        el("td", { textContent: item.name }),
        el("td", { className: "num", textContent: item.price }),
        el("td", { className: "num", textContent: item.quantity }),
        el("td", { className: "num" }, more, " ", drop));
    }));
    tbody.dataset.count = body.count;
  }

  $("#api-create").addEventListener("submit", (event) => {
    event.preventDefault();
    busy(buttons, async () => {
      const name = $("#api-name");
      const { response } = await send("POST", "/api/items/", { name: name.value, price: $("#api-price").value, quantity: 1 });
      if (response.status === 201) name.value = `Grinder ${++created}`;
      await refresh();
    });
  });
  $("#api-refresh").addEventListener("click", () => busy(buttons, refresh));
  refresh();
}

// -- cache -----------------------------------------------------------------------------

function setupCache() {
  const panel = $("#panel-cache");
  const buttons = $$("button", panel);
  const tbody = $("#cache-log tbody");
  let count = 0;

  async function get() {
    const { response, body, ms } = await call("/demo/cached/");
    const xcache = response.headers.get("X-Cache") || "—";
    tbody.prepend(el("tr", { dataset: { xcache } },
      el("td", { textContent: ++count }),
      el("td", {}, el("span", { className: `badge x-${xcache}`, textContent: xcache })),
      el("td", { className: "num", textContent: `${ms} ms` }),
      el("td", { className: "num", textContent: response.headers.get("Age") ?? "—" }),
      el("td", { className: "mono", textContent: body.computed_at ? body.computed_at.slice(11, 23) : response.status }),
      el("td", { className: "mono", textContent: (response.headers.get("ETag") || "").slice(0, 12) }),
    ));
    while (tbody.children.length > 12) tbody.lastChild.remove();
    tbody.dataset.requests = count;
  }

  async function invalidate() {
    const { response } = await call("/demo/cached/invalidate/", {
      method: "POST", headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin",
    });
    tbody.prepend(el("tr", { className: "note", dataset: { xcache: "invalidated" } },
      el("td", { colSpan: 6 }, "POST /demo/cached/invalidate/ → ", badge(response.status),
        response.ok ? " the next GET is a MISS" : "")));
  }

  $("#cache-fetch").addEventListener("click", () => busy(buttons, get));
  $("#cache-burst").addEventListener("click", () => busy(buttons, () => Promise.all([get(), get(), get()])));
  $("#cache-invalidate").addEventListener("click", () => busy(buttons, invalidate));
}

// -- rate limits -----------------------------------------------------------------------

function parseRateLimit(value) {
  const match = /;r=(\d+);t=(\d+)/.exec(value || "");
  return match ? { r: Number(match[1]), t: Number(match[2]) } : null;
}

function setupLimiter(box) {
  const name = box.dataset.algorithm;
  const buttons = $$("button", box);
  const meter = $$(".meter i", box);
  const status = $(`#rl-${name}-status`);
  const headers = $(`#rl-${name}-headers`);
  let retryTimer = null;

  async function send() {
    const { response, ms } = await call(box.dataset.url);
    const rateLimit = response.headers.get("RateLimit");
    const policy = response.headers.get("RateLimit-Policy");
    const retryAfter = response.headers.get("Retry-After");
    const left = parseRateLimit(rateLimit);
    if (left) meter.forEach((cell, i) => cell.classList.toggle("used", i >= left.r));
    status.replaceChildren(badge(response.status));
    box.dataset.lastStatus = response.status;
    box.dataset.history = `${box.dataset.history || ""} ${response.status}`.trim();
    headers.textContent = [`RateLimit: ${rateLimit}`, `RateLimit-Policy: ${policy}`,
      retryAfter ? `Retry-After: ${retryAfter}` : "", `${ms} ms`].filter(Boolean).join("  ·  ");
    return { status: response.status, retryAfter: Number(retryAfter || 0) };
  }

  function scheduleRetry(seconds) {
    if (!$("#rl-auto").checked) return;
    clearInterval(retryTimer);
    let left = seconds;
    const tick = () => {
      if (left <= 0) {
        clearInterval(retryTimer);
        busy(buttons, async () => {
          const result = await send();
          if (result.status === 429) scheduleRetry(result.retryAfter);
        });
        return;
      }
      status.replaceChildren(badge(429), ` calling again in ${left} s`);
      left -= 1;
    };
    tick();
    retryTimer = setInterval(tick, 1000);
  }

  async function burst(times) {
    clearInterval(retryTimer);
    let result = null;
    for (let i = 0; i < times; i += 1) result = await send();
    if (result && result.status === 429) scheduleRetry(result.retryAfter);
  }

  $("[data-action=one]", box).addEventListener("click", () => busy(buttons, () => burst(1)));
  $("[data-action=burst]", box).addEventListener("click", () => busy(buttons, () => burst(6)));
}

// -- circuit breaker -------------------------------------------------------------------

function setupBreaker() {
  const panel = $("#panel-breaker");
  const buttons = $$("button", panel);
  const log = $("#flaky-log");
  const stateBox = $("#breaker-state");

  function show(breaker) {
    const state = breaker.state;
    if (stateBox.dataset.state !== state) {
      const seen = stateBox.dataset.history ? stateBox.dataset.history.split(" ") : [];
      seen.push(state);
      stateBox.dataset.history = seen.join(" ");
    }
    stateBox.dataset.state = state;
    stateBox.className = `state s-${state}`;
    stateBox.textContent = state.replace("_", "-");
    $("#breaker-counts").textContent =
      `${breaker.consecutive_failures}/${breaker.failure_threshold} failures in a row · ` +
      `${breaker.successes} ok · ${breaker.failures} failed · ${breaker.rejections} refused`;
  }

  async function poll() {
    try {
      const { body } = await call("/demo/breakers/");
      show(body.breakers["flaky-upstream"]);
    } catch (error) { /* the server is restarting: try again at the next tick */ }
  }

  async function callUpstream() {
    const rate = $("input[name=flaky-rate]:checked").value;
    const { response, body, ms } = await call(`/demo/flaky/?failure_rate=${rate}`);
    const what = body.outcome === "ok" ? `“${body.data.quote}”` : body.outcome;
    const retry = response.headers.get("Retry-After");
    logLine(log, `${rate === "1" ? "failing" : "healthy"} upstream → `, badge(response.status),
      ` ${what} in ${body.elapsed_ms ?? ms} ms` + (retry ? ` · Retry-After: ${retry}` : "") +
      (body.breaker ? ` · breaker ${body.breaker.state.replace("_", "-")}` : ""));
    if (body.breaker) show(body.breaker);
  }

  $("#flaky-call").addEventListener("click", () => busy(buttons, callUpstream));
  poll();
  setInterval(poll, 500);
}

document.addEventListener("DOMContentLoaded", () => {
  setupFanout();
  setupApi();
  setupCache();
  $$(".limiter").forEach(setupLimiter);
  setupBreaker();
});
