// Export Platform web UI: sign in with a JWT, start exports, follow every job live over the
// progress WebSocket, download, cancel and delete. Plain DOM, no dependency, no network access
// but this origin (the page is served with a strict Content-Security-Policy).
"use strict";

(() => {
  const API = "/api/v1/exports";
  const TOKEN_KEY = "exportplatform.token";
  const FINISHED = new Set(["completed", "failed", "cancelled", "expired"]);
  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    e.append(...kids);
    return e;
  };

  // ---------- messages ----------
  let noticeTimer = 0;
  // notice shows a message: text, and elements such as an id's copy button (idChip).
  function notice(...parts) {
    clearTimeout(noticeTimer);
    $("notice").replaceChildren(...parts.filter((x) => x !== ""));
    if (parts.some((x) => x !== "")) noticeTimer = setTimeout(() => { $("notice").textContent = ""; }, 8000);
  }

  // ---------- ids ----------
  // Jobs, schedules and platforms have UUIDv7 ids: the leading hex digits are a timestamp, the
  // same for everything made within a minute, the trailing ones random. The page shows the
  // last 8 hex digits (what tells two ids apart), the full id on hover, and copies it on click.
  function shortId(id) {
    const hex = String(id || "").replace(/-/g, "");
    return hex.slice(-8);
  }
  function idChip(id, what) {
    const b = el("button", { type: "button", class: "id", title: id, "data-id": id,
      "aria-label": "Copy the id of " + (what || "this item") + ": " + id, text: shortId(id) });
    b.addEventListener("click", () => copyId(b));
    return b;
  }
  // copyText puts text on the clipboard; false when the browser refuses.
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) { /* no Clipboard API here (not a secure context) or refused: select and copy */ }
    const ta = el("textarea", { readonly: true, "aria-hidden": "true", class: "clip", tabindex: "-1" });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
    ta.remove();
    return ok;
  }
  async function copyId(b) {
    const id = b.dataset.id;
    const ok = await copyText(id);
    b.dataset.copied = ok ? "true" : "false";
    notice(ok ? "Copied the id " + id + "." : "Could not copy the id: select it here: " + id);
    clearTimeout(b.copiedTimer);
    b.copiedTimer = setTimeout(() => { delete b.dataset.copied; }, 3000);
  }
  function alertMsg(text) {
    const a = $("alert");
    a.textContent = text || "";
    a.hidden = !text;
  }

  // ApiError is the contract's error body {"error": {"code", "message", "field"}}.
  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field || "";
    }
  }

  // ---------- token ----------
  let token = "";
  let claims = null;

  function decodeClaims(t) {
    const parts = t.split(".");
    if (parts.length !== 3) throw new Error("a JWT has three dot-separated parts");
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const c = JSON.parse(new TextDecoder().decode(bytes));
    if (!c || typeof c !== "object") throw new Error("the JWT payload is not an object");
    return c;
  }

  function tokenProblem(c) {
    if (c.exp && c.exp * 1000 < Date.now()) return "this token expired at " + new Date(c.exp * 1000).toLocaleString();
    return "";
  }

  function login(t, quiet) {
    t = (t || "").trim().replace(/^Bearer\s+/i, "");
    let c;
    try {
      c = decodeClaims(t);
    } catch (e) {
      showLogin("That is not a valid token: " + e.message + ".");
      return false;
    }
    const problem = tokenProblem(c);
    if (problem) {
      showLogin("Please paste a valid token: " + problem + ".");
      return false;
    }
    token = t;
    claims = c;
    try { sessionStorage.setItem(TOKEN_KEY, t); } catch (_) { /* storage disabled: keep it in memory */ }
    $("who-name").textContent = c.name || c.sub || "unknown";
    $("who-sub").textContent = c.name && c.sub ? "(" + c.sub + ")" : "";
    $("who").hidden = false;
    $("login").hidden = true;
    $("export").hidden = false;
    $("jobs").hidden = false;
    $("schedules").hidden = false;
    $("platforms").hidden = false;
    $("token").value = "";
    alertMsg("");
    if (!quiet) notice("Signed in as " + (c.name || c.sub) + ".");
    loadFields();
    jobs.clear();
    for (const row of rows.values()) row.tr.remove();
    rows.clear();
    loadPage(true);
    resetScheduleForm();
    loadSchedules();
    resetPlatformForm();
    loadPlatforms();
    connect(true);
    return true;
  }

  function logout() {
    token = "";
    claims = null;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* nothing stored */ }
    disconnect();
    jobs.clear();
    for (const row of rows.values()) row.tr.remove();
    rows.clear();
    renderSoon();
    $("who").hidden = true;
    $("export").hidden = true;
    $("jobs").hidden = true;
    $("schedules").hidden = true;
    $("platforms").hidden = true;
    schedules.clear();
    renderSchedules();
    platforms.clear();
    resetPlatformForm();
    renderPlatforms();
    showLogin("");
    notice("Signed out.");
  }

  function showLogin(why) {
    $("login").hidden = false;
    if (why) alertMsg(why);
    $("token").focus();
  }

  // authFailed handles a 401 or 403: the user must paste another token.
  function authFailed(err) {
    const what = err.status === 403
      ? "Your token lacks the permission for this (" + err.message + "). Paste a token with READ_EXPORTS and WRITE_EXPORTS."
      : "Your token was refused (" + err.message + "). Please paste a valid token.";
    alertMsg(what);
    $("login").hidden = false;
    if (err.status === 401) {
      disconnect();
      setConn("offline", "Signed out: token refused");
    }
  }

  // ---------- HTTP ----------
  async function api(method, path, body) {
    const headers = { "Authorization": "Bearer " + token, "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let r;
    try {
      r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "network", "the server cannot be reached (" + e.message + ")", "");
    }
    if (!r.ok) {
      let code = "http_" + r.status, message = r.status + " " + r.statusText, field = "";
      try {
        const e = (await r.json()).error;
        if (e) { code = e.code || code; message = e.message || message; field = e.field || ""; }
      } catch (_) { /* not JSON: keep the status line */ }
      const err = new ApiError(r.status, code, message, field);
      if (r.status === 401 || r.status === 403) authFailed(err);
      throw err;
    }
    return r;
  }

  // ---------- jobs: state and ordering ----------
  const jobs = new Map(); // id -> job
  const fetching = new Set(); // ids being fetched after an update for a job not shown yet
  const started = new Set(); // jobs started from this page whose end is not announced yet
  let nextCursor = "";

  // stamp turns an RFC 3339 time into microseconds since the epoch (Date.parse keeps only
  // milliseconds; two updates within one millisecond must still order).
  function stamp(s) {
    if (!s) return -Infinity;
    const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
    if (!m) { const t = Date.parse(s); return isNaN(t) ? -Infinity : t * 1000; }
    const base = Date.parse(m[1] + m[3]);
    const micro = Number(((m[2] || "") + "000000").slice(0, 6));
    return base * 1000 + micro;
  }

  // put applies a job (snapshot, list item) or an update, unless it is older than what is shown.
  function put(id, data, partial) {
    const cur = jobs.get(id);
    if (cur && stamp(data.updated_at) < stamp(cur.updated_at)) return;
    if (started.has(id) && FINISHED.has(data.status) && (!cur || cur.status !== data.status)) {
      // Tell (screen-reader users too) how the exports started from this page ended.
      started.delete(id);
      const j = Object.assign({}, cur, data);
      const why = data.error && data.error.message ? ": " + data.error.message : "";
      notice("Export " + jobLabel(j) + " " + data.status + why + (data.status === "completed" ? " — ready to download." : "."));
    }
    scheduledJobMoved(Object.assign({}, cur, data), !cur);
    if (!cur && partial) {
      // An update for a job this page has not loaded: fetch it whole, then apply.
      jobs.set(id, Object.assign({ id, task_id: id }, data));
      fetchJob(id);
    } else {
      jobs.set(id, Object.assign({}, cur || {}, data, { id }));
    }
    renderSoon();
  }

  async function fetchJob(id) {
    if (fetching.has(id)) return;
    fetching.add(id);
    try {
      const j = await (await api("GET", API + "/" + encodeURIComponent(id))).json();
      const cur = jobs.get(id);
      if (cur && stamp(cur.updated_at) > stamp(j.updated_at)) {
        // keep the newer live fields, take the rest (entity, format, created_at...) from j
        jobs.set(id, Object.assign({}, j, cur));
      } else {
        jobs.set(id, j);
      }
      scheduledJobMoved(j, true);
      renderSoon();
    } catch (e) {
      if (e.status === 404) { jobs.delete(id); renderSoon(); }
    } finally {
      fetching.delete(id);
    }
  }

  async function loadPage(first) {
    if (first) nextCursor = "";
    const q = new URLSearchParams({ limit: "50" });
    if (nextCursor) q.set("cursor", nextCursor);
    if ($("mine").checked && claims && claims.sub) q.set("requested_by", claims.sub);
    try {
      const body = await (await api("GET", API + "?" + q)).json();
      for (const j of body.items || []) put(j.id, j, false);
      nextCursor = body.next_cursor || "";
      $("more").hidden = !nextCursor;
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Could not load the jobs: " + e.message);
    }
  }

  // ---------- WebSocket ----------
  let ws = null;
  let wsGen = 0; // bumps on every connect/disconnect: stale sockets' events are ignored
  let retryMs = 500;
  let retryTimer = 0;
  let countdownTimer = 0;

  // setConn shows the connection state; only a change of text is announced (the reconnect
  // countdown beside it is not, or a screen reader would read it every second).
  function setConn(state, text) {
    $("conn").dataset.state = state;
    if ($("conn-text").textContent !== text) $("conn-text").textContent = text;
    $("conn-wait").textContent = "";
  }

  function disconnect() {
    wsGen++;
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    if (ws) { try { ws.close(1000, "bye"); } catch (_) { /* already closed */ } }
    ws = null;
    setConn("offline", "Not connected");
  }

  function connect(reset) {
    if (!token) return;
    if (reset) retryMs = 500;
    disconnect();
    const gen = wsGen;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = proto + "//" + location.host + API + "/ws?access_token=" + encodeURIComponent(token);
    setConn("connecting", "Connecting…");
    let opened = false;
    let sock;
    try {
      sock = new WebSocket(url);
    } catch (e) {
      scheduleReconnect(gen);
      return;
    }
    ws = sock;
    sock.onopen = () => {
      if (gen !== wsGen) return;
      opened = true;
      retryMs = 500;
      setConn("live", "Live");
      // Snapshots answer the subscription: they refresh the table after a reconnect too.
      sock.send(JSON.stringify({ type: "subscribe", all: true }));
    };
    sock.onmessage = (ev) => {
      if (gen !== wsGen) return;
      let m;
      try { m = JSON.parse(ev.data); } catch (_) { return; }
      onMessage(m);
    };
    sock.onclose = (ev) => {
      if (gen !== wsGen) return;
      ws = null;
      if (ev.code === 4401) {
        // The hub closes a connection when its token expires: a new token is needed.
        showLogin("Your token expired. Please paste a new one.");
        return;
      }
      if (!opened) {
        // The upgrade was refused or the server is down: a bad token gets a 401 from the API.
        api("GET", API + "?limit=1").then(() => scheduleReconnect(gen), (e) => {
          if (e.status !== 401 && e.status !== 403) scheduleReconnect(gen);
        });
        return;
      }
      scheduleReconnect(gen);
    };
  }

  function scheduleReconnect(gen) {
    if (gen !== wsGen || !token) return;
    const wait = Math.round(retryMs * (0.75 + Math.random() * 0.5));
    retryMs = Math.min(retryMs * 2, 15000);
    const until = Date.now() + wait;
    setConn("reconnecting", "Reconnecting");
    const show = () => { $("conn-wait").textContent = " in " + Math.max(0, Math.ceil((until - Date.now()) / 1000)) + " s…"; };
    show();
    clearInterval(countdownTimer);
    countdownTimer = setInterval(show, 1000);
    retryTimer = setTimeout(() => { clearInterval(countdownTimer); connect(false); }, wait);
  }

  function onMessage(m) {
    switch (m.type) {
      case "snapshot":
        if (m.job && m.job.id) put(m.job.id, m.job, false);
        break;
      case "progress": case "completed": case "failed": case "cancelled": case "expired": {
        const id = m.job_id || m.task_id;
        if (!id) return;
        const u = {};
        for (const k of ["status", "phase", "progress", "rows_done", "rows_total", "bytes_written",
          "rate_rows_per_s", "eta_seconds", "queue_position", "expires_at", "updated_at", "error", "file"]) {
          if (k in m) u[k] = m[k];
        }
        if (!u.status && m.type !== "progress") u.status = m.type;
        put(id, u, true);
        break;
      }
      case "error":
        if (m.error) alertMsg("Live updates: " + (m.error.message || m.error.code));
        break;
      default:
        break; // pong, unsubscribed
    }
  }

  // ---------- jobs: rendering ----------
  const rows = new Map(); // id -> {tr, cells...}
  let renderQueued = false;
  function renderSoon() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; render(); });
  }

  const nf = new Intl.NumberFormat();
  const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  function fmtRows(j) {
    const done = nf.format(j.rows_done || 0);
    return j.rows_total === null || j.rows_total === undefined ? done + " / ?" : done + " / " + nf.format(j.rows_total);
  }
  function fmtRate(r) {
    if (r === null || r === undefined) return "";
    return nf.format(Math.round(r)) + " rows/s";
  }
  function fmtETA(s) {
    if (s === null || s === undefined) return "";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min " + String(s % 60).padStart(2, "0") + " s";
    return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
  }
  function fmtTime(s) {
    const t = Date.parse(s);
    return isNaN(t) ? "" : new Date(t).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
  }
  function phaseText(j) {
    let p = j.phase || "";
    if (j.status === "queued" && j.queue_position) p = (p || "queued") + " (#" + j.queue_position + " in line)";
    return p;
  }
  function jobLabel(j) {
    return (j.entity || "export") + " " + (j.format || "") + " " + shortId(j.id) + " of " + fmtTime(j.created_at);
  }
  // fileLabel is the file name the user chose, when it is not the default (entity.ext).
  function fileLabel(j) {
    const n = j.file_name || (j.file && j.file.file_name) || "";
    return n && j.entity && !n.startsWith(j.entity + ".") ? n : "";
  }

  function makeRow(id) {
    const cell = (label, cls) => el("td", { "data-label": label, class: cls || "" });
    const r = {
      tr: el("tr", { "data-job-id": id }),
      created: cell("Created", "when"),
      entity: cell("Entity"),
      format: cell("Format"),
      status: cell("Status"),
      progressCell: cell("Progress"),
      phase: cell("Phase"),
      rowsCell: cell("Rows", "num"),
      rate: cell("Rate", "num"),
      eta: cell("ETA", "num"),
      acts: cell("Actions", "acts-cell"),
    };
    r.badge = el("span", { class: "status" });
    r.err = el("span", { class: "joberr" });
    r.delivery = el("span", { class: "delivery" });
    r.status.append(el("div", {}, r.badge, r.err, r.delivery));
    r.bar = el("progress", { max: "100", value: "0" });
    r.pct = el("span", { class: "pct" });
    r.progressCell.append(el("div", { class: "bar" }, r.bar, r.pct));
    r.createdText = el("span");
    r.idText = idChip(id, "the job");
    r.fileName = el("span", { class: "fname" });
    r.created.append(el("div", {}, r.createdText, r.idText, r.fileName));
    r.download = el("button", { type: "button", class: "small", "data-action": "download", onclick: () => download(id, r.download) }, "Download");
    r.cancel = el("button", { type: "button", class: "small secondary", "data-action": "cancel", onclick: () => cancelJob(id, r.cancel) }, "Cancel");
    r.del = el("button", { type: "button", class: "small danger", "data-action": "delete", onclick: () => deleteJob(id, r.del) }, "Delete");
    r.redeliver = el("button", { type: "button", class: "small secondary", "data-action": "redeliver", hidden: true,
      onclick: () => retryDelivery(id, r.redeliver) }, "Retry delivery");
    r.acts.append(el("div", { class: "acts" }, r.download, r.cancel, r.redeliver, r.del));
    r.tr.append(r.created, r.entity, r.format, r.status, r.progressCell, r.phase, r.rowsCell, r.rate, r.eta, r.acts);
    return r;
  }

  function fillRow(r, j) {
    const label = jobLabel(j);
    r.tr.dataset.status = j.status || "";
    r.createdText.textContent = fmtTime(j.created_at);
    r.fileName.textContent = fileLabel(j);
    r.idText.setAttribute("aria-label", "Copy the id of " + label + ": " + j.id);
    r.entity.textContent = j.entity || "";
    r.format.textContent = j.format || "";
    r.badge.textContent = j.status || "";
    r.badge.dataset.status = j.status || "";
    r.err.textContent = j.error && j.error.message ? j.error.message : "";
    const d = j.delivery;
    r.delivery.textContent = deliveryText(d);
    r.delivery.dataset.status = d ? d.status : "";
    r.redeliver.hidden = !(d && d.status === "failed");
    r.redeliver.setAttribute("aria-label", "Retry the delivery of " + label);
    const p = Math.max(0, Math.min(100, Number(j.progress) || 0));
    r.bar.value = p;
    r.bar.setAttribute("aria-label", "Progress of " + label);
    r.bar.setAttribute("aria-valuetext", nf1.format(p) + " %, " + (j.status || ""));
    r.pct.textContent = nf1.format(p) + " %";
    r.phase.textContent = phaseText(j);
    r.rowsCell.textContent = fmtRows(j);
    r.rate.textContent = FINISHED.has(j.status) ? "" : fmtRate(j.rate_rows_per_s);
    r.eta.textContent = FINISHED.has(j.status) ? "" : fmtETA(j.eta_seconds);
    const expired = j.expires_at && Date.parse(j.expires_at) <= Date.now();
    r.download.hidden = !(j.status === "completed" && !expired);
    r.cancel.hidden = !(j.status === "queued" || j.status === "running");
    r.download.setAttribute("aria-label", "Download " + label);
    r.cancel.setAttribute("aria-label", "Cancel " + label);
    if (!r.del.dataset.confirm) r.del.setAttribute("aria-label", "Delete " + label);
  }

  function render() {
    const mine = $("mine").checked && claims ? claims.sub : "";
    const list = [...jobs.values()]
      .filter((j) => !mine || !j.requested_by || j.requested_by === mine)
      .sort((a, b) => stamp(b.created_at) - stamp(a.created_at) || (a.id < b.id ? 1 : -1));
    const keep = new Set(list.map((j) => j.id));
    for (const [id, r] of rows) {
      if (!keep.has(id)) { r.tr.remove(); rows.delete(id); }
    }
    const body = $("job-rows");
    list.forEach((j, i) => {
      let r = rows.get(j.id);
      if (!r) { r = makeRow(j.id); rows.set(j.id, r); }
      fillRow(r, j);
      if (body.children[i] !== r.tr) body.insertBefore(r.tr, body.children[i] || null);
    });
    $("no-jobs").hidden = list.length > 0;
  }

  // A job's delivery to its platform's destination, in words.
  function deliveryText(d) {
    if (!d) return "";
    const err = d.last_error && d.last_error.message ? ": " + d.last_error.message : "";
    switch (d.status) {
      case "delivered": return "delivered to " + d.target;
      case "delivering": return "delivering (attempt " + d.attempts + ")";
      case "pending": return d.attempts ? "delivery retried at " + fmtTime(d.next_attempt_at) + " (attempt " + d.attempts + " failed" + err + ")" : "delivery waiting";
      case "failed": return "delivery failed after " + d.attempts + " attempts" + err;
    }
    return "";
  }

  // Deliveries move without a push (the live channel carries the jobs' progress): the jobs
  // whose delivery is under way are read again every few seconds.
  setInterval(() => {
    if (!token || document.hidden) return;
    for (const j of jobs.values()) {
      if (j.status === "completed" && (!j.delivery && j.platform_id && !j.delivery_checked || j.delivery && (j.delivery.status === "pending" || j.delivery.status === "delivering"))) {
        j.delivery_checked = true;
        fetchJob(j.id);
      }
    }
  }, 2000);

  async function retryDelivery(id, btn) {
    btn.disabled = true;
    try {
      const j = await (await api("POST", API + "/" + encodeURIComponent(id) + "/deliver")).json();
      put(id, j, false);
      notice("The delivery of job ", idChip(id, "the job"), " starts again.");
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Could not retry the delivery: " + e.message);
    } finally {
      btn.disabled = false;
    }
  }

  // ---------- job actions ----------
  function fileName(disposition, fallback) {
    if (disposition) {
      const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(disposition);
      if (star) { try { return decodeURIComponent(star[1].trim()); } catch (_) { /* fall through */ } }
      const plain = /filename\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(disposition) || /filename\s*=\s*([^;]+)/.exec(disposition);
      if (plain) return plain[1].replace(/\\(.)/g, "$1").trim();
    }
    return fallback;
  }

  async function download(id, btn) {
    const j = jobs.get(id) || {};
    btn.disabled = true;
    notice("Downloading " + jobLabel(j) + "…");
    try {
      const r = await api("GET", API + "/download/" + encodeURIComponent(id));
      const blob = await r.blob();
      const name = fileName(r.headers.get("Content-Disposition"), (j.file && j.file.file_name) || j.file_name || "export");
      const a = el("a", { href: URL.createObjectURL(blob), download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
      notice("Downloaded " + name + " (" + nf.format(blob.size) + " bytes).");
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Download failed: " + e.message);
    } finally {
      btn.disabled = false;
    }
  }

  async function cancelJob(id, btn) {
    btn.disabled = true;
    try {
      const j = await (await api("POST", API + "/" + encodeURIComponent(id) + "/cancel")).json();
      if (j && j.id) put(j.id, j, false);
      notice("Cancelled " + jobLabel(j && j.id ? j : jobs.get(id) || {}) + ".");
    } catch (e) {
      if (e.code === "already_finished") notice("This job had already finished.");
      else if (e.status !== 401 && e.status !== 403) alertMsg("Cancel failed: " + e.message);
    } finally {
      btn.disabled = false;
    }
  }

  // deleteJob asks for a second press before deleting (the file goes with the job).
  async function deleteJob(id, btn) {
    const j = jobs.get(id) || {};
    if (!btn.dataset.confirm) {
      btn.dataset.confirm = "1";
      btn.textContent = "Confirm delete";
      btn.setAttribute("aria-label", "Confirm: delete " + jobLabel(j) + " and its file");
      setTimeout(() => {
        delete btn.dataset.confirm;
        btn.textContent = "Delete";
        btn.setAttribute("aria-label", "Delete " + jobLabel(j));
      }, 5000);
      return;
    }
    btn.disabled = true;
    try {
      await api("DELETE", API + "/" + encodeURIComponent(id));
      jobs.delete(id);
      renderSoon();
      notice("Deleted " + jobLabel(j) + ".");
      $("jobs-heading").focus();
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Delete failed: " + e.message);
      btn.disabled = false;
    }
  }

  // ---------- export form ----------
  const fieldCache = new Map(); // entity -> fields answer
  let fieldsFor = "";

  async function loadFields() {
    const entity = $("entity").value;
    document.querySelectorAll("fieldset.filters").forEach((f) => { f.hidden = f.dataset.entity !== entity; f.disabled = f.hidden; });
    let spec = fieldCache.get(entity);
    if (!spec) {
      $("field-list").replaceChildren(el("li", { class: "muted", text: "Loading the fields…" }));
      try {
        spec = await (await api("GET", API + "/fields/" + encodeURIComponent(entity))).json();
        fieldCache.set(entity, spec);
      } catch (e) {
        $("field-list").replaceChildren();
        if (e.status !== 401 && e.status !== 403) alertMsg("Could not load the fields of " + entity + ": " + e.message);
        return;
      }
    }
    if ($("entity").value !== entity) return; // changed meanwhile
    fieldsFor = entity;
    $("field-list").replaceChildren(...spec.fields.map((f) => fieldItem(f)));
    $("relations-names").textContent = spec.relations && spec.relations.length
      ? "(" + spec.relations.map((r) => r.name).join(", ") + ")" : "";
    syncSheets();
  }

  function fieldItem(f) {
    const id = "fld-" + f.name;
    const box = el("input", { type: "checkbox", id, value: f.name, "data-field": f.name, "data-default": f.default ? "1" : "" });
    box.checked = !!f.default;
    const li = el("li", { "data-field": f.name, class: f.default ? "on" : "" },
      el("span", { class: "pos", "aria-hidden": "true" }),
      box,
      el("label", { for: id, title: f.description || "" }, f.name + " ", el("span", { class: "type", text: f.type })),
      el("button", { type: "button", class: "secondary", "aria-label": "Move " + f.name + " up", "data-move": "-1", text: "↑" }),
      el("button", { type: "button", class: "secondary", "aria-label": "Move " + f.name + " down", "data-move": "1", text: "↓" }));
    box.addEventListener("change", () => li.classList.toggle("on", box.checked));
    return li;
  }

  $("field-list").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-move]");
    if (!b) return;
    const li = b.closest("li");
    const list = $("field-list");
    const items = [...list.children];
    const i = items.indexOf(li);
    const j = i + Number(b.dataset.move);
    if (j < 0 || j >= items.length) { notice(li.dataset.field + " is already " + (j < 0 ? "first" : "last") + "."); return; }
    if (j < i) list.insertBefore(li, items[j]); else list.insertBefore(li, items[j].nextSibling);
    b.focus(); // moving the node keeps it, focus stays on the pressed button
    const chosen = [...list.querySelectorAll("input[data-field]:checked")].map((x) => x.value);
    const pos = chosen.indexOf(li.dataset.field);
    notice(li.dataset.field + " moved to position " + (j + 1) + " of " + items.length +
      (pos >= 0 ? " (column " + (pos + 1) + " of " + chosen.length + ")" : "") + ".");
  });

  function setAllFields(how) {
    document.querySelectorAll("#field-list input[data-field]").forEach((x) => {
      x.checked = how === "all" ? true : how === "none" ? false : x.dataset.default === "1";
      x.closest("li").classList.toggle("on", x.checked);
    });
  }
  $("fields-all").addEventListener("click", () => setAllFields("all"));
  $("fields-none").addEventListener("click", () => setAllFields("none"));
  $("fields-defaults").addEventListener("click", () => setAllFields("defaults"));

  function syncOptions() {
    const format = $("format").value;
    document.querySelectorAll("fieldset.options").forEach((f) => { f.hidden = f.dataset.format !== format; f.disabled = f.hidden; });
    syncSheets();
  }
  // The exported entity always has its sheet: its box is ticked and locked.
  function syncSheets() {
    const entity = $("entity").value;
    document.querySelectorAll("input[data-sheet]").forEach((x) => {
      const own = x.dataset.sheet === entity;
      if (own) x.checked = true;
      x.disabled = own || $("options-excel").hidden;
    });
  }
  $("entity").addEventListener("change", () => {
    clearErrors();
    // a new entity starts with its own sheet only
    document.querySelectorAll("input[data-sheet]").forEach((x) => { x.checked = x.dataset.sheet === $("entity").value; });
    loadFields();
  });
  // A decimal comma cannot share the comma delimiter: switch to the semicolon, as Excel expects.
  $("o-decimal").addEventListener("change", () => {
    if ($("o-decimal").value === "," && $("o-delimiter").value === ",") {
      $("o-delimiter").value = ";";
      notice("Delimiter set to semicolon, since the decimal separator is now a comma.");
    }
  });
  $("format").addEventListener("change", () => { clearErrors(); syncOptions(); });

  function clearErrors() {
    document.querySelectorAll("#export-form .err").forEach((e) => { e.textContent = ""; });
    document.querySelectorAll("#export-form [aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  }

  // fieldError puts the API's message next to the input its field names; false when none shows.
  function fieldError(field, message) {
    let input = null, slot = null;
    const [kind, name] = field.split(".");
    if (kind === "filters" && name) input = document.querySelector("fieldset.filters:not([hidden]) [data-filter=\"" + CSS.escape(name) + "\"]");
    else if (kind === "options" && name === "sheets") slot = $("err-options.sheets");
    else if (kind === "options" && name) input = document.querySelector("fieldset.options:not([hidden]) [data-option=\"" + CSS.escape(name) + "\"]");
    else if (kind === "fields" || kind === "exclude_fields") { slot = $("err-fields"); input = document.querySelector("#field-list input"); }
    else if (kind === "file_name") input = $("file_name");
    if (input && !slot) slot = $(input.getAttribute("aria-describedby") || "");
    if (!slot) return false;
    slot.textContent = message;
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    return true;
  }

  function buildRequest() {
    const entity = $("entity").value;
    const format = $("format").value;
    const fields = [...document.querySelectorAll("#field-list input[data-field]:checked")].map((x) => x.value);
    const filters = {};
    document.querySelectorAll("fieldset.filters[data-entity=\"" + entity + "\"] [data-filter]").forEach((x) => {
      const v = x.value.trim();
      if (v === "") return;
      switch (x.dataset.kind) {
        case "number": filters[x.dataset.filter] = Number(v); break;
        case "bool": filters[x.dataset.filter] = v === "true"; break;
        case "list": filters[x.dataset.filter] = v.split(/[\s,;]+/).filter(Boolean); break;
        case "time": {
          const t = new Date(v);
          filters[x.dataset.filter] = isNaN(t) ? v : t.toISOString();
          break;
        }
        default: filters[x.dataset.filter] = v;
      }
    });
    const options = {};
    document.querySelectorAll("fieldset.options[data-format=\"" + format + "\"] [data-option]").forEach((x) => {
      options[x.dataset.option] = x.type === "checkbox" ? x.checked : x.value;
    });
    if (format === "excel") {
      options.sheets = [...document.querySelectorAll("input[data-sheet]")].filter((x) => x.checked).map((x) => x.dataset.sheet);
    }
    const body = { fields, filters, options };
    const name = $("file_name").value.trim();
    if (name) body.file_name = name;
    return { entity, format, body };
  }

  $("export-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors();
    alertMsg("");
    if (fieldsFor !== $("entity").value) { alertMsg("The fields are still loading; try again in a moment."); return; }
    const { entity, format, body } = buildRequest();
    if (body.fields.length === 0) { fieldError("fields", "Choose at least one column."); return; }
    const btn = $("start");
    btn.disabled = true;
    $("form-status").textContent = "Sending…";
    try {
      const a = await (await api("POST", API + "/" + format + "/" + entity, body)).json();
      const id = a.job_id || a.task_id;
      $("export-form").dataset.lastJobId = id;
      started.add(id);
      $("form-status").replaceChildren("Export queued (job ", idChip(id, "the job"), ").");
      if (!jobs.has(id)) {
        put(id, { id, task_id: id, entity, format, status: a.status || "queued", progress: 0, rows_done: 0,
          rows_total: null, created_at: new Date().toISOString(), requested_by: claims && claims.sub }, false);
        fetchJob(id);
      }
    } catch (e) {
      $("form-status").textContent = "";
      if (e.status === 401 || e.status === 403) return;
      const shown = e.field && fieldError(e.field, e.message);
      alertMsg("Export refused: " + e.message + (e.field ? " (field " + e.field + ")" : ""));
      if (!shown && e.field) notice("");
    } finally {
      btn.disabled = false;
    }
  });

  // ---------- schedules ----------
  const ZONES = ["Europe/Paris", "UTC", "Europe/London", "Europe/Berlin", "Europe/Madrid", "America/New_York",
    "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Shanghai", "Asia/Tokyo",
    "Australia/Sydney", "Australia/Lord_Howe"];
  const schedules = new Map(); // id -> schedule
  let editing = null; // the schedule being edited, or null for a new one
  let schedulesTimer = 0;
  let previewTimer = 0;
  let previewGen = 0;
  let runLogFor = "";

  // A zone the browser cannot format (it should not happen: the API checked it) shows UTC.
  function fmtZoned(iso, zone) {
    try {
      return new Date(iso).toLocaleString(undefined, { timeZone: zone, weekday: "short",
        year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
    } catch (_) {
      return fmtUTC(iso);
    }
  }
  function fmtUTC(iso) { return new Date(iso).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }
  function timetable(s) {
    return (s.schedule_type === "interval" ? "every " + nf.format(s.interval_minutes) + " min" : s.cron_expression) + " · " + s.timezone;
  }

  // refreshSchedulesSoon reloads the list once, shortly after a scheduled job moved.
  function refreshSchedulesSoon() {
    if (!token || schedulesTimer) return;
    schedulesTimer = setTimeout(() => { schedulesTimer = 0; loadSchedules(); }, 700);
  }
  function scheduledJobMoved(j, isNew) {
    if (j && j.schedule_id && (isNew || FINISHED.has(j.status))) refreshSchedulesSoon();
  }

  async function loadSchedules() {
    try {
      const body = await (await api("GET", API + "/schedules?limit=200")).json();
      schedules.clear();
      for (const sc of body.items || []) schedules.set(sc.id, sc);
      renderSchedules();
      if (runLogFor && schedules.has(runLogFor)) showRunLog(runLogFor, false);
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Could not load the schedules: " + e.message);
    }
  }

  function renderSchedules() {
    const body = $("schedule-rows");
    body.textContent = "";
    for (const sc of schedules.values()) {
      const st = sc.stats || {};
      const cell = (label, ...kids) => el("td", { "data-label": label }, ...kids);
      const next = sc.enabled && sc.next_run_at
        ? el("div", {}, el("span", { text: fmtZoned(sc.next_run_at, sc.timezone) }), el("span", { class: "id", text: fmtUTC(sc.next_run_at) }))
        : el("span", { class: "muted", text: sc.enabled ? "no further run" : "off" });
      const last = st.last_run_at
        ? el("div", {}, el("span", { class: "status", "data-status": st.last_status || "", text: st.last_status || "" }), " ",
          el("span", { text: fmtZoned(st.last_run_at, sc.timezone) }))
        : el("span", { class: "muted", text: "never" });
      const counts = nf.format(st.runs || 0) + " runs · " + nf.format(st.successes || 0) + " ok · " + nf.format(st.failures || 0) + " failed" +
        (st.consecutive_failures > 1 ? " (" + st.consecutive_failures + " in a row)" : "");
      const toggle = el("button", { type: "button", class: "small", "data-action": "toggle", "aria-pressed": sc.enabled ? "true" : "false",
        "aria-label": "Enabled: " + sc.name, onclick: () => toggleSchedule(sc.id, toggle) }, sc.enabled ? "On" : "Off");
      const run = el("button", { type: "button", class: "small", "data-action": "run", "aria-label": "Run " + sc.name + " now",
        onclick: () => runSchedule(sc.id, run) }, "Run now");
      const edit = el("button", { type: "button", class: "small secondary", "data-action": "edit", "aria-label": "Edit " + sc.name,
        onclick: () => editSchedule(sc.id) }, "Edit");
      const log = el("button", { type: "button", class: "small secondary", "data-action": "runs", "aria-label": "Run log of " + sc.name,
        onclick: () => showRunLog(sc.id, true) }, "Run log");
      const del = el("button", { type: "button", class: "small danger", "data-action": "delete", "aria-label": "Delete " + sc.name,
        onclick: () => deleteSchedule(sc.id, del) }, "Delete");
      const tr = el("tr", { "data-schedule-id": sc.id, class: sc.enabled ? "" : "sched-off" },
        cell("Name", el("div", {}, el("span", { text: sc.name }), idChip(sc.id, "the schedule " + sc.name),
          sc.last_error ? el("span", { class: "joberr", text: sc.last_error }) : "")),
        cell("Timetable", el("code", { text: timetable(sc) })),
        cell("Next run", next), cell("Last run", last), cell("Runs", counts), cell("Enabled", toggle),
        el("td", { "data-label": "Actions", class: "acts-cell" }, el("div", { class: "acts" }, run, edit, log, del)));
      body.append(tr);
    }
    $("no-schedules").hidden = schedules.size > 0;
  }

  async function toggleSchedule(id, btn) {
    const sc = schedules.get(id);
    btn.disabled = true;
    try {
      const s2 = await (await api("POST", API + "/schedules/" + id + "/toggle", { enabled: !sc.enabled })).json();
      schedules.set(id, s2);
      renderSchedules();
      notice("Schedule " + s2.name + " is " + (s2.enabled ? "on; next run " + (s2.next_run_at ? fmtZoned(s2.next_run_at, s2.timezone) : "none") : "off") + ".");
      const again = document.querySelector("tr[data-schedule-id=\"" + id + "\"] [data-action=toggle]");
      if (again) again.focus();
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Could not switch the schedule: " + e.message);
      btn.disabled = false;
    }
  }

  async function runSchedule(id, btn) {
    const sc = schedules.get(id) || {};
    btn.disabled = true;
    try {
      const a = await (await api("POST", API + "/schedules/" + id + "/run")).json();
      const jid = a.job_id;
      started.add(jid);
      if (a.job) put(jid, a.job, false);
      notice("Schedule " + sc.name + " started job ", idChip(jid, "the job"), ".");
      loadSchedules();
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Could not run the schedule: " + e.message);
    } finally {
      btn.disabled = false;
    }
  }

  async function deleteSchedule(id, btn) {
    const sc = schedules.get(id) || {};
    if (!btn.dataset.confirm) {
      btn.dataset.confirm = "1";
      btn.textContent = "Confirm delete";
      btn.setAttribute("aria-label", "Confirm: delete the schedule " + sc.name + " and its run log");
      setTimeout(() => { delete btn.dataset.confirm; btn.textContent = "Delete"; btn.setAttribute("aria-label", "Delete " + sc.name); }, 5000);
      return;
    }
    btn.disabled = true;
    try {
      await api("DELETE", API + "/schedules/" + id);
      schedules.delete(id);
      if (editing && editing.id === id) resetScheduleForm();
      if (runLogFor === id) closeRunLog();
      renderSchedules();
      notice("Deleted the schedule " + sc.name + ". The jobs it started stay.");
      $("schedules-heading").focus();
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Could not delete the schedule: " + e.message);
      btn.disabled = false;
    }
  }

  async function showRunLog(id, focus) {
    const sc = schedules.get(id) || {};
    runLogFor = id;
    try {
      const body = await (await api("GET", API + "/schedules/" + id + "/runs?limit=50")).json();
      const rowsEl = $("run-rows");
      rowsEl.textContent = "";
      for (const r of body.items || []) {
        const attempts = el("div", {});
        for (const a of r.attempts || []) {
          attempts.append(el("span", { class: "attempt", "data-job-id": a.job_id }, "#" + a.attempt + " ", idChip(a.job_id, "attempt " + a.attempt + "'s job"),
            " " + (a.job_status || "deleted")));
        }
        rowsEl.append(el("tr", { "data-status": r.status },
          el("td", { "data-label": "Fire time" }, el("div", {}, el("span", { text: fmtZoned(r.scheduled_for, sc.timezone) }),
            el("span", { class: "id", text: fmtUTC(r.scheduled_for) }))),
          el("td", { "data-label": "Trigger", text: r.trigger.replace("_", " ") }),
          el("td", { "data-label": "Status" }, el("span", { class: "status", "data-status": r.status, text: r.status.replace("_", " ") })),
          el("td", { "data-label": "Attempts" }, attempts),
          el("td", { "data-label": "Reason", text: r.reason || "" })));
      }
      if (!(body.items || []).length) rowsEl.append(el("tr", {}, el("td", { colspan: "5", class: "muted", text: "No run yet." })));
      $("run-log-heading").textContent = "Run log of " + sc.name;
      $("run-log").hidden = false;
      if (focus) $("run-log-heading").focus();
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Could not load the run log: " + e.message);
    }
  }
  function closeRunLog() { runLogFor = ""; $("run-log").hidden = true; }

  function clearScheduleErrors() {
    document.querySelectorAll("#schedule-form .err").forEach((e) => { e.textContent = ""; });
    document.querySelectorAll("#schedule-form [aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  }
  const scheduleFieldIds = { name: "s-name", schedule_type: "s-type", cron_expression: "s-cron", interval_minutes: "s-interval",
    timezone: "s-timezone", misfire_policy: "s-misfire", overlap_policy: "s-overlap", max_retries: "s-retries",
    retry_delay_seconds: "s-delay" };
  // scheduleFieldError shows the API's message next to the schedule input, or the export
  // form's input for export_config.*; false when no input shows it.
  function scheduleFieldError(field, message, focus) {
    if (field.startsWith("export_config.")) return fieldError(field.slice("export_config.".length), message);
    const id = scheduleFieldIds[field];
    if (!id) return false;
    $("err-" + id).textContent = message;
    $(id).setAttribute("aria-invalid", "true");
    if (focus) $(id).focus();
    return true;
  }

  function syncScheduleType() {
    const cron = $("s-type").value === "cron";
    $("s-cron-ctl").hidden = !cron;
    $("s-interval-ctl").hidden = cron;
  }

  function timingBody() {
    const b = { schedule_type: $("s-type").value, timezone: $("s-timezone").value.trim() };
    if (b.schedule_type === "cron") b.cron_expression = $("s-cron").value.trim();
    else b.interval_minutes = Number($("s-interval").value);
    return b;
  }

  // previewSoon shows the next five fire times of what is typed, once typing pauses.
  function previewSoon() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, 250);
  }
  async function preview() {
    const gen = ++previewGen;
    const b = timingBody();
    for (const id of ["s-type", "s-cron", "s-interval", "s-timezone"]) { $("err-" + id).textContent = ""; $(id).removeAttribute("aria-invalid"); }
    try {
      const r = await (await api("POST", API + "/schedules/preview", Object.assign(b, { count: 5 }))).json();
      if (gen !== previewGen) return;
      const list = $("s-next");
      list.textContent = "";
      for (const x of r.runs || []) {
        list.append(el("li", { "data-at": x.at }, el("span", { text: fmtZoned(x.at, r.timezone) + " " }), el("span", { class: "utc", text: "(" + fmtUTC(x.at) + ")" })));
      }
      if (!(r.runs || []).length) list.append(el("li", { class: "muted", text: "never" }));
      $("s-next").dataset.ok = "true";
    } catch (e) {
      if (gen !== previewGen) return;
      $("s-next").textContent = "";
      $("s-next").dataset.ok = "false";
      if (e.status === 400 && e.field && !scheduleFieldError(e.field, e.message, false)) $("err-s-next").textContent = e.message;
    }
  }

  function resetScheduleForm() {
    editing = null;
    $("schedule-form").reset();
    $("s-zones").textContent = "";
    for (const z of ZONES) $("s-zones").append(el("option", { value: z }));
    clearScheduleErrors();
    $("schedule-form-heading").textContent = "New schedule";
    $("s-save").textContent = "Create schedule";
    $("s-cancel-edit").hidden = true;
    $("s-use-form").checked = true;
    syncScheduleType();
    previewSoon();
  }

  function editSchedule(id) {
    const sc = schedules.get(id);
    if (!sc) return;
    resetScheduleForm();
    editing = sc;
    $("s-name").value = sc.name;
    $("s-type").value = sc.schedule_type;
    $("s-cron").value = sc.cron_expression || "";
    $("s-interval").value = sc.interval_minutes || 60;
    $("s-timezone").value = sc.timezone;
    $("s-misfire").value = sc.misfire_policy;
    $("s-overlap").value = sc.overlap_policy;
    $("s-retries").value = sc.max_retries;
    $("s-delay").value = sc.retry_delay_seconds;
    $("s-enabled").checked = sc.enabled;
    $("s-use-form").checked = false;
    $("schedule-form-heading").textContent = "Edit schedule " + sc.name;
    $("s-save").textContent = "Save changes";
    $("s-cancel-edit").hidden = false;
    syncScheduleType();
    previewSoon();
    $("schedule-form-heading").focus();
  }

  $("schedule-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearScheduleErrors();
    clearErrors();
    alertMsg("");
    const body = Object.assign(timingBody(), {
      name: $("s-name").value.trim(), misfire_policy: $("s-misfire").value, overlap_policy: $("s-overlap").value,
      max_retries: Number($("s-retries").value), retry_delay_seconds: Number($("s-delay").value), enabled: $("s-enabled").checked,
    });
    if ($("s-use-form").checked || !editing) {
      if (fieldsFor !== $("entity").value) { alertMsg("The fields are still loading; try again in a moment."); return; }
      const { entity, format, body: req } = buildRequest();
      body.export_config = Object.assign({ entity, format }, req);
    } else {
      body.export_config = editing.export_config;
    }
    if (!body.name) { scheduleFieldError("name", "Give the schedule a name.", true); return; }
    const btn = $("s-save");
    btn.disabled = true;
    $("s-status").textContent = "Saving…";
    try {
      const path = editing ? API + "/schedules/" + editing.id : API + "/schedules";
      const sc = await (await api(editing ? "PUT" : "POST", path, body)).json();
      schedules.set(sc.id, sc);
      loadSchedules();
      $("s-status").textContent = (editing ? "Saved " : "Created ") + sc.name +
        (sc.next_run_at ? "; next run " + fmtZoned(sc.next_run_at, sc.timezone) + "." : ".");
      if (editing) resetScheduleForm(); else { $("s-name").value = ""; }
    } catch (e) {
      $("s-status").textContent = "";
      if (e.status === 401 || e.status === 403) return;
      if (e.field) scheduleFieldError(e.field, e.message, true);
      alertMsg("Schedule refused: " + e.message + (e.field ? " (field " + e.field + ")" : ""));
    } finally {
      btn.disabled = false;
    }
  });
  $("s-type").addEventListener("change", () => { syncScheduleType(); previewSoon(); });
  for (const id of ["s-cron", "s-interval", "s-timezone"]) $(id).addEventListener("input", previewSoon);
  $("s-cancel-edit").addEventListener("click", () => { resetScheduleForm(); $("schedules-heading").focus(); });
  $("schedules-refresh").addEventListener("click", loadSchedules);
  $("run-log-close").addEventListener("click", () => { closeRunLog(); $("schedules-heading").focus(); });
  setInterval(() => { if (token && !document.hidden) loadSchedules(); }, 30000);

  // ---------- platforms ----------
  const platforms = new Map(); // id -> platform
  let editingPlatform = null; // the platform being edited, or null for a new one

  async function loadPlatforms() {
    try {
      const body = await (await api("GET", API + "/platforms?limit=200")).json();
      platforms.clear();
      for (const p of body.items || []) platforms.set(p.id, p);
      renderPlatforms();
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Could not load the platforms: " + e.message);
    }
  }

  function destText(d) {
    switch (d.type) {
      case "sftp": return "SFTP " + d.user + "@" + d.host + ":" + d.port + "/" + (d.directory || "");
      case "s3": return "S3 " + d.endpoint + "/" + d.bucket + "/" + (d.prefix || "");
      case "http": return (d.method || "PUT") + " " + d.url;
    }
    return "our bucket only";
  }

  function renderPlatforms() {
    const body = $("platform-rows");
    body.textContent = "";
    for (const p of platforms.values()) {
      const cell = (label, ...kids) => el("td", { "data-label": label }, ...kids);
      const c = p.default_config || {};
      const exp = [c.format || "", c.entity || "", c.compression || ""].filter(Boolean).join(" ") || "the template's";
      const hook = p.webhook
        ? el("div", {}, el("span", { text: p.webhook.url }),
          p.webhook_status && p.webhook_status.disabled_at ? el("span", { class: "joberr", text: "switched off: " + p.webhook_status.disabled_reason }) : "")
        : el("span", { class: "muted", text: "none" });
      const test = el("button", { type: "button", class: "small secondary", "data-action": "test", "aria-label": "Test the connection of " + p.name,
        onclick: () => testPlatform(p.id, test) }, "Test connection");
      const run = el("button", { type: "button", class: "small", "data-action": "export", "aria-label": "Export now with " + p.name,
        onclick: () => exportWith(p.id, run) }, "Export now");
      const edit = el("button", { type: "button", class: "small secondary", "data-action": "edit", "aria-label": "Edit " + p.name,
        onclick: () => editPlatform(p.id, edit) }, "Edit");
      const del = el("button", { type: "button", class: "small danger", "data-action": "delete", "aria-label": "Delete " + p.name,
        onclick: () => deletePlatform(p.id, del) }, "Delete");
      const current = editingPlatform && editingPlatform.id === p.id;
      body.append(el("tr", { "data-platform-id": p.id, "aria-current": current ? "true" : false, class: current ? "editing" : "" },
        cell("Name", el("div", {}, el("span", { text: p.name }), idChip(p.id, "the platform " + p.name))),
        cell("Type", el("span", { text: p.type })), cell("Export", el("span", { text: exp })),
        cell("Destination", el("span", { text: destText(p.destination || {}) })), cell("Webhook", hook),
        cell("Schedules", el("span", { text: nf.format((p.schedule_ids || []).length) })),
        el("td", { "data-label": "Actions", class: "acts-cell" }, el("div", { class: "acts" }, run, test, edit, del))));
    }
    $("no-platforms").hidden = platforms.size > 0;
  }

  async function testPlatform(id, btn) {
    const p = platforms.get(id) || {};
    btn.disabled = true;
    const list = $("p-test-steps");
    list.textContent = "";
    $("p-test").hidden = false;
    $("p-test-heading").textContent = "Connection test of " + p.name + "…";
    try {
      const res = await (await api("POST", API + "/platforms/" + id + "/test")).json();
      for (const s of res.steps || []) {
        list.append(el("li", { "data-step": s.step, "data-ok": s.ok ? "1" : "0",
          text: s.step + ": " + (s.ok ? "ok" : "failed — " + s.error) + " (" + s.duration_ms + " ms)" }));
      }
      $("p-test-heading").textContent = "Connection test of " + p.name + ": " + (res.ok ? "it works" : "it failed");
      $("p-test-heading").dataset.ok = res.ok ? "1" : "0";
      $("p-test-heading").focus();
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Could not test the platform: " + e.message);
    } finally {
      btn.disabled = false;
    }
  }

  async function exportWith(id, btn) {
    const p = platforms.get(id) || {};
    btn.disabled = true;
    try {
      const a = await (await api("POST", API + "/create", { platform_id: id })).json();
      const jid = a.job_id || a.task_id;
      started.add(jid);
      if (a.job) put(jid, a.job, false);
      notice("Export ", idChip(jid, "the job"), " started with " + p.name + ".");
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Could not start the export: " + e.message);
    } finally {
      btn.disabled = false;
    }
  }

  async function deletePlatform(id, btn) {
    const p = platforms.get(id) || {};
    if (!btn.dataset.confirm) {
      btn.dataset.confirm = "1";
      btn.textContent = "Confirm delete";
      btn.setAttribute("aria-label", "Confirm: delete the platform " + p.name);
      setTimeout(() => { delete btn.dataset.confirm; btn.textContent = "Delete"; btn.setAttribute("aria-label", "Delete " + p.name); }, 5000);
      return;
    }
    btn.disabled = true;
    try {
      await api("DELETE", API + "/platforms/" + id);
      platforms.delete(id);
      if (editingPlatform && editingPlatform.id === id) resetPlatformForm();
      renderPlatforms();
      notice("Deleted the platform " + p.name + ".");
      $("platforms-heading").focus();
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) alertMsg("Could not delete the platform: " + e.message);
      btn.disabled = false;
    }
  }

  function syncDestination() {
    const t = $("p-dest").value;
    for (const g of document.querySelectorAll("#platform-form [data-dest]")) g.hidden = g.dataset.dest !== t;
  }

  // platformErrorField maps an API error's field to the form's error slot.
  function platformErrorField(field) {
    const map = { name: "p-name", type: "p-type", "destination.type": "p-dest", "webhook.url": "p-hook-url", "webhook.secret_ref": "p-hook-secret",
      "default_config.entity": "p-entity", "default_config.format": "p-format", "default_config.compression": "p-compression" };
    if (map[field]) return map[field];
    const m = /^destination\.(.+)$/.exec(field || "");
    if (m) {
      const input = document.querySelector("#platform-form [data-dest=\"" + $("p-dest").value + "\"] [data-d=\"" + m[1] + "\"]");
      if (input) return input.id;
    }
    return "";
  }

  function clearPlatformErrors() {
    for (const e of document.querySelectorAll("#platform-form .err")) e.textContent = "";
    for (const e of document.querySelectorAll("#platform-form [aria-invalid]")) e.removeAttribute("aria-invalid");
  }

  // resetPlatformForm empties the form back to "New platform".
  function resetPlatformForm() {
    const was = editingPlatform;
    editingPlatform = null;
    $("platform-form").reset();
    clearPlatformErrors();
    $("platform-form-heading").textContent = "New platform";
    $("p-save").textContent = "Create platform";
    $("p-cancel-edit").hidden = true;
    $("p-edit-help").hidden = true;
    syncDestination();
    if (was) renderPlatforms(); // unmark the row
  }

  // editPlatform fills the form with the platform as stored now (the list may be older: PUT
  // replaces the platform whole); saving then replaces it. Secrets are references (env:NAME,
  // file:/path), so they show as they are.
  async function editPlatform(id, btn) {
    btn.disabled = true;
    let p;
    try {
      p = await (await api("GET", API + "/platforms/" + encodeURIComponent(id))).json();
    } catch (e) {
      btn.disabled = false;
      if (e.status === 404) {
        platforms.delete(id);
        renderPlatforms();
        alertMsg("This platform no longer exists.");
      } else if (e.status !== 401 && e.status !== 403) {
        alertMsg("Could not load the platform: " + e.message);
      }
      return;
    }
    btn.disabled = false;
    platforms.set(p.id, p);
    resetPlatformForm();
    editingPlatform = p;
    const c = p.default_config || {};
    const d = p.destination || {};
    $("p-name").value = p.name;
    $("p-type").value = p.type || "custom";
    $("p-entity").value = c.entity || "";
    $("p-format").value = c.format || "";
    $("p-compression").value = c.compression || "";
    $("p-dest").value = d.type || "storage";
    for (const x of document.querySelectorAll("#platform-form [data-dest=\"" + $("p-dest").value + "\"] [data-d]")) {
      const v = d[x.dataset.d];
      if (x.dataset.kind === "bool") x.checked = !!v; // the API writes use_tls always, path_style when true
      else x.value = v === undefined || v === null ? "" : String(v);
    }
    $("p-hook-url").value = p.webhook ? p.webhook.url || "" : "";
    $("p-hook-secret").value = p.webhook ? p.webhook.secret_ref || "" : "";
    $("platform-form-heading").textContent = "Edit platform " + p.name;
    $("p-save").textContent = "Save changes";
    $("p-cancel-edit").hidden = false;
    $("p-edit-help").hidden = false;
    syncDestination();
    renderPlatforms();
    $("platform-form-heading").focus();
  }

  // platformBody is the platform the form describes. When editing, what the form does not show
  // (the default columns, filters, options and titles; an S3 region; the webhook's events) is
  // kept from the platform, since PUT replaces it whole.
  function platformBody() {
    const base = editingPlatform || {};
    const cfg = Object.assign({}, base.default_config || {});
    for (const [k, id] of [["entity", "p-entity"], ["format", "p-format"], ["compression", "p-compression"]]) {
      if ($(id).value) cfg[k] = $(id).value;
      else delete cfg[k];
    }
    const type = $("p-dest").value;
    const dest = { type };
    if (type !== "storage") {
      if (base.destination && base.destination.type === type) Object.assign(dest, base.destination);
      for (const x of document.querySelectorAll("#platform-form [data-dest=\"" + type + "\"] [data-d]")) {
        if (x.dataset.kind === "bool") dest[x.dataset.d] = x.checked;
        else if (x.value.trim() !== "") dest[x.dataset.d] = x.dataset.kind === "number" ? Number(x.value) : x.value.trim();
        else delete dest[x.dataset.d];
      }
    }
    const body = { name: $("p-name").value.trim(), type: $("p-type").value, default_config: cfg, destination: dest };
    if ($("p-hook-url").value.trim() || $("p-hook-secret").value.trim()) {
      body.webhook = Object.assign({}, base.webhook || {}, { url: $("p-hook-url").value.trim(), secret_ref: $("p-hook-secret").value.trim() });
    }
    return body;
  }

  $("p-dest").addEventListener("change", syncDestination);
  $("platforms-refresh").addEventListener("click", loadPlatforms);
  $("p-cancel-edit").addEventListener("click", () => { resetPlatformForm(); $("platforms-heading").focus(); });
  $("platform-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearPlatformErrors();
    const was = editingPlatform;
    const body = platformBody();
    const btn = $("p-save");
    btn.disabled = true;
    $("p-status").textContent = "Saving…";
    try {
      const path = was ? API + "/platforms/" + encodeURIComponent(was.id) : API + "/platforms";
      const p = await (await api(was ? "PUT" : "POST", path, body)).json();
      platforms.set(p.id, p);
      loadPlatforms();
      $("p-status").textContent = "";
      notice("Platform " + p.name + (was ? " saved." : " created."));
      if (editingPlatform === was) resetPlatformForm();
    } catch (e) {
      $("p-status").textContent = "";
      if (e.status === 401 || e.status === 403) return;
      const slot = platformErrorField(e.field);
      if (slot) {
        $("err-" + slot).textContent = e.message;
        $(slot).setAttribute("aria-invalid", "true");
        $(slot).focus();
      } else {
        alertMsg("Could not " + (was ? "save" : "create") + " the platform: " + e.message);
      }
    } finally {
      btn.disabled = false;
    }
  });
  syncDestination();

  // ---------- wiring ----------
  $("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); login($("token").value, false); });
  $("logout").addEventListener("click", logout);
  $("more").addEventListener("click", () => loadPage(false));
  $("refresh").addEventListener("click", () => { loadPage(true); connect(true); });
  $("mine").addEventListener("change", () => { renderSoon(); loadPage(true); });
  window.addEventListener("online", () => { if (token && !ws) connect(true); });

  // A token in the address (#token=…, as `make run` prints) signs in, then leaves the address
  // bar and the history: the fragment never reaches a server, but it should not linger either.
  function tokenFromHash() {
    const h = new URLSearchParams(location.hash.replace(/^#/, ""));
    const t = h.get("token") || h.get("access_token");
    if (t) history.replaceState(null, "", location.pathname + location.search);
    return t;
  }
  window.addEventListener("hashchange", () => { const t = tokenFromHash(); if (t) login(t, false); });

  syncOptions();
  const fromHash = tokenFromHash();
  let stored = "";
  try { stored = sessionStorage.getItem(TOKEN_KEY) || ""; } catch (_) { /* storage disabled */ }
  if (fromHash) login(fromHash, false);
  else if (stored) login(stored, true);
  else showLogin("");
})();
