// The mesh page: one EventSource, one full state per change, rendered with
// DOM calls (never innerHTML with data). No polling, no external resources.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let last = null;

  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") n.className = v; else n.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) {
      if (k === null || k === undefined) continue;
      n.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return n;
  }
  const badge = (cls, text, title) => el("span", { class: "badge " + cls, title }, text);
  const fmtNum = (v, digits) => (v === undefined || v === null ? "—" : Number(v).toFixed(digits));
  const fmtPct = (v) => (v === undefined || v === null ? "—" : (v * 100).toFixed(1) + "%");
  const fmtTime = (s) => { const d = new Date(s); return isNaN(d) || d.getFullYear() < 2000 ? "" : d.toLocaleTimeString([], { hour12: false }); };
  function since(s) {
    const d = new Date(s);
    if (isNaN(d) || d.getFullYear() < 2000) return "";
    const sec = Math.max(0, Math.round((Date.now() - d) / 1000));
    if (sec < 90) return sec + " s ago";
    if (sec < 5400) return Math.round(sec / 60) + " min ago";
    return Math.round(sec / 3600) + " h ago";
  }

  function readiness(r) {
    if (!r) return badge("info", "probing…");
    let b;
    if (!r.reachable) b = badge("bad", "unreachable", r.error);
    else if (r.ready) b = badge("ok", "ready");
    else b = badge("warn", "not ready (" + r.status + ")");
    const checks = Object.entries(r.checks || {}).sort(([a], [b]) => a.localeCompare(b));
    if (checks.length === 0 && !r.error) return b;
    const items = checks.map(([name, c]) =>
      el("li", {}, el("code", {}, name), " ", c.ok ? "ok" : "failing", c.detail ? ": " + c.detail : "", " (" + c.took_ms + " ms)"));
    if (r.error) items.push(el("li", {}, r.error));
    return el("details", {}, el("summary", {}, b, el("span", { class: "sr-only" }, " show checks")), el("ul", {}, items));
  }

  function clientState(inst) {
    const out = [];
    for (const [caller, state] of Object.entries(inst.breakers || {}).sort()) {
      out.push(el("li", {}, badge(state === "open" ? "bad" : "warn", state === "open" ? "ejected" : "half-open"), " by ", el("code", {}, caller)));
    }
    for (const c of (inst.traffic && inst.traffic.calls) || []) {
      out.push(el("li", {}, "→ ", el("strong", {}, c.service), " ", fmtNum(c.attempts_per_sec, 1), "/s, retries ", fmtPct(c.retry_ratio),
        c.hedge_ratio > 0 ? ", hedges " + fmtPct(c.hedge_ratio) : "",
        c.budget_refused_per_sec > 0 ? [", ", badge("bad", "budget refused " + fmtNum(c.budget_refused_per_sec, 1) + "/s")] : ""));
    }
    return out.length ? el("ul", { class: "calls" }, out) : "—";
  }

  function instanceRow(svc, i) {
    const t = i.traffic;
    const reg = i.registered ? i.registered : i.first_seen;
    const regLabel = i.registered ? "" : " (first seen)";
    return el("tr", { "data-instance": i.id, "data-service": svc.name },
      el("th", { scope: "row" }, el("code", {}, i.id)),
      el("td", { class: "nowrap" }, i.zone || "—"),
      el("td", { class: "num" }, i.weight),
      el("td", {}, i.version || "—"),
      el("td", {}, i.endpoints.map((e) => el("div", {}, el("code", {}, e)))),
      el("td", {}, readiness(i.readiness)),
      el("td", { class: "nowrap" }, el("time", { datetime: reg, title: new Date(reg).toString() }, fmtTime(reg)), el("div", { class: "note" }, since(reg) + regLabel)),
      el("td", { class: "num" }, t ? fmtNum(t.rps, 1) : el("span", { title: i.metrics_error || "waiting for a second scrape" }, "—")),
      el("td", { class: "num" }, t ? fmtPct(t.error_ratio) : "—"),
      el("td", { class: "num" }, t ? fmtPct(t.client_error_ratio) : "—", i.differs ? [" ", badge("bad", "differs", i.differs)] : ""),
      el("td", { class: "num" }, t && t.shed_ratio !== undefined ? fmtPct(t.shed_ratio) : "—"),
      el("td", { class: "num" }, t ? fmtNum(t.p50_ms, 1) : "—"),
      el("td", { class: "num" }, t ? fmtNum(t.p99_ms, 1) : "—"),
      el("td", {}, clientState(i)));
  }

  function serviceSection(svc) {
    const head = ["Instance", "Zone", "Weight", "Version", "Endpoints", "Readiness", "Registered", "req/s", "5xx", "4xx", "shed", "p50 ms", "p99 ms", "Client state"];
    const ready = svc.instances.filter((i) => i.readiness && i.readiness.ready).length;
    const table = el("table", { "aria-describedby": "svc-" + svc.name + "-note" },
      el("caption", {}, svc.name, " ", badge(svc.instances.length ? "info" : "warn", svc.instances.length + " instance" + (svc.instances.length === 1 ? "" : "s") + ", " + ready + " ready")),
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, svc.instances.map((i) => instanceRow(svc, i))));
    return el("section", { class: "service", "data-service": svc.name, "aria-label": "service " + svc.name },
      svc.error ? el("p", { class: "error", role: "alert" }, "discovery error: " + svc.error) : null,
      el("div", { class: "table-wrap" }, table),
      el("p", { id: "svc-" + svc.name + "-note", class: "note" },
        svc.instances.length ? "Rates and latency over the last scrapes of each instance's /metrics; client state from its callers' /metrics." : "No instance in discovery."));
  }

  function eventItem(e) {
    const cls = { register: "ok", restore: "ok", recovered: "ok", update: "info", withdraw: "warn", "lease lost": "warn", expire: "bad", eject: "bad", error: "bad" }[e.kind] || "info";
    return el("li", { "data-kind": e.kind },
      el("time", { datetime: e.time }, fmtTime(e.time)), badge(cls, e.kind), " ",
      el("strong", {}, e.service), e.instance ? [" ", el("code", {}, e.instance)] : "",
      e.detail ? el("div", { class: "note" }, e.detail) : "");
  }

  function render() {
    if (!last) return;
    const s = last;
    const q = $("filter").value.trim().toLowerCase();
    // Keep what the user opened and where the keyboard was across renders.
    const open = new Set([...document.querySelectorAll("tr[data-instance] details[open]")].map((d) => d.closest("tr").dataset.instance));
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("tr[data-instance]");
    const focusID = focused && focused.dataset.instance;
    $("registry").textContent = s.registry || "unknown";
    const n = s.services.reduce((a, x) => a + x.instances.length, 0);
    $("counts").textContent = s.services.length + " services, " + n + " instances";
    const main = $("services");
    const kids = [];
    if (s.catalog_error) kids.push(el("p", { class: "error", role: "alert" }, "cannot list services: " + s.catalog_error));
    const shown = s.services
      .map((svc) => (!q || svc.name.includes(q) ? svc : { ...svc, instances: svc.instances.filter((i) => i.id.toLowerCase().includes(q)) }))
      .filter((svc) => !q || svc.name.includes(q) || svc.instances.length);
    if (shown.length === 0) kids.push(el("p", { class: "note" }, s.services.length ? "No service matches the filter." : "No service in the registry yet."));
    for (const svc of shown) kids.push(serviceSection(svc));
    main.replaceChildren(...kids);
    for (const id of open) {
      const d = main.querySelector('tr[data-instance="' + CSS.escape(id) + '"] details');
      if (d) d.open = true;
    }
    if (focusID) {
      const f = main.querySelector('tr[data-instance="' + CSS.escape(focusID) + '"] summary');
      if (f) f.focus();
    }
    $("events").replaceChildren(...s.events.slice(-150).reverse().map(eventItem));
  }

  function setConn(cls, text) {
    const c = $("conn");
    if (c.textContent !== text) c.textContent = text;
    c.className = "conn " + cls;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("filter").addEventListener("input", render);
    $("filter").form.addEventListener("submit", (e) => e.preventDefault());
    const es = new EventSource("/api/events");
    es.addEventListener("state", (m) => {
      last = JSON.parse(m.data);
      document.body.dataset.at = last.at;
      setConn("conn-ok", "live");
      render();
    });
    es.addEventListener("error", () => setConn(es.readyState === EventSource.CLOSED ? "conn-bad" : "conn-wait", es.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…"));
    // Relative times ("12 s ago") age without new data: refresh the text only.
    setInterval(render, 5000);
  });
})();
