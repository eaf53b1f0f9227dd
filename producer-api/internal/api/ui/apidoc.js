// The API reference (#api): fetches the API's own OpenAPI 3.1 document (public, no token) and
// renders it with plain DOM, offline, under the page's Content-Security-Policy: operations
// grouped by tag (method, path, summary, parameters, request body, responses, security), then
// every schema of components.schemas with its properties, types, required keys, enums and
// examples. A $ref to a schema is a link to it. No text of the document becomes markup.
(() => {
  "use strict";
  const OPENAPI = "/api/v1/openapi.json";
  const ASYNCAPI = "/api/v1/asyncapi.json";
  const METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];
  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    return put(e, ...kids);
  };
  // put appends what there is: a part that does not apply is null.
  const put = (parent, ...kids) => {
    parent.append(...kids.filter((x) => x !== null && x !== undefined && x !== ""));
    return parent;
  };

  let doc = null;
  let loading = null;

  // ---------- view ----------
  // #api and #api-… (the page's own anchors) show the reference; anything else the exports.
  function route() {
    const api = /^#api(-|$)/.test(location.hash);
    document.body.dataset.view = api ? "api" : "app";
    $("apidoc").hidden = !api;
    $("nav-api").setAttribute("aria-current", api ? "page" : "false");
    $("nav-exports").setAttribute("aria-current", api ? "false" : "page");
    if (!api) return;
    load().then(() => {
      const target = location.hash.length > 4 ? document.getElementById(location.hash.slice(1)) : null;
      if (target) {
        if (target.tagName === "DETAILS") target.open = true;
        target.scrollIntoView();
      } else if (location.hash === "#api") {
        $("apidoc-heading").focus();
      }
    });
  }

  function load() {
    if (doc) return Promise.resolve();
    if (loading) return loading;
    setStatus("Loading the API document…", "loading");
    loading = fetch(OPENAPI, { headers: { Accept: "application/json" }, cache: "no-cache" })
      .then((r) => {
        if (!r.ok) throw new Error(OPENAPI + " answered " + r.status + " " + r.statusText);
        return r.json();
      })
      .then((d) => {
        if (!d || typeof d.openapi !== "string" || !d.paths) throw new Error("it is not an OpenAPI document");
        doc = d;
        render();
        setStatus("", "ready");
      })
      .catch((e) => {
        setStatus("Could not load the API document: " + e.message + ".", "failed");
        $("apidoc-retry").hidden = false;
      })
      .finally(() => { loading = null; });
    return loading;
  }

  function setStatus(text, state) {
    $("apidoc-status").textContent = text;
    $("apidoc").dataset.state = state;
  }

  // ---------- references ----------
  // deref follows a local $ref ("#/components/schemas/Job"); the name is the last segment.
  function deref(x) {
    const seen = new Set();
    let name = "";
    while (x && typeof x.$ref === "string" && x.$ref.startsWith("#/") && !seen.has(x.$ref)) {
      seen.add(x.$ref);
      name = refName(x.$ref);
      let t = doc;
      for (const part of x.$ref.slice(2).split("/")) {
        t = t && t[part.replace(/~1/g, "/").replace(/~0/g, "~")];
      }
      if (t === undefined) break;
      x = t;
    }
    return { value: x, name };
  }
  function refName(ref) { return decodeURIComponent(ref.split("/").pop()); }
  function schemaRef(ref) { return ref.startsWith("#/components/schemas/") ? refName(ref) : ""; }
  function anchor(prefix, s) { return "api-" + prefix + "-" + String(s).replace(/[^A-Za-z0-9_-]+/g, "-"); }
  function schemaLink(name) { return el("a", { href: "#" + anchor("schema", name), class: "schema-link", text: name }); }

  // ---------- text ----------
  // prose renders a description: paragraphs at blank lines, `code` spans as code; nothing else.
  function prose(text, cls) {
    if (!text) return null;
    const box = el("div", { class: "prose " + (cls || "") });
    for (const para of String(text).trim().split(/\n\s*\n/)) {
      const p = el("p");
      String(para).split("`").forEach((part, i) => {
        if (part) p.append(i % 2 ? el("code", { text: part }) : part.replace(/\s*\n\s*/g, " "));
      });
      box.append(p);
    }
    return box;
  }
  function inline(text) {
    const s = el("span", { class: "prose-inline" });
    String(text || "").split("`").forEach((part, i) => { if (part) s.append(i % 2 ? el("code", { text: part }) : part); });
    return s;
  }
  function json(v) { return el("pre", { class: "example" }, el("code", { text: JSON.stringify(v, null, 2) })); }

  // ---------- schemas ----------
  // union: a schema whose type reads with " | " (wrapped in parentheses inside another type).
  const union = (x) => !!(x && (x.oneOf || x.anyOf || Array.isArray(x.type) && x.type.length > 1));

  // typeNode is a schema's type in a few words: string (date-time), Job[], JobError | null.
  function typeNode(s) {
    const out = el("span", { class: "type" });
    add(out, s);
    return out;
    function add(box, s) {
      if (!s || typeof s !== "object" || Object.keys(s).length === 0) { box.append("any"); return; }
      if (s.$ref) {
        const n = schemaRef(s.$ref);
        box.append(n ? schemaLink(n) : s.$ref);
        return;
      }
      const alts = s.oneOf || s.anyOf;
      if (alts || s.allOf) {
        (alts || s.allOf).forEach((x, i) => { if (i) box.append(alts ? " | " : " & "); add(box, x); });
        return;
      }
      if (s.const !== undefined) { box.append(JSON.stringify(s.const)); return; }
      let types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [s.properties ? "object" : s.enum ? "enum" : "any"];
      types.forEach((t, i) => {
        if (i) box.append(" | ");
        if (t === "array") {
          const it = s.items || {};
          if (union(it)) { box.append("("); add(box, it); box.append(")[]"); } else { add(box, it); box.append("[]"); }
        } else if (t === "object" && s.additionalProperties && typeof s.additionalProperties === "object" && !s.properties) {
          const v = s.additionalProperties;
          box.append("map of ");
          if (union(v)) { box.append("("); add(box, v); box.append(")"); } else add(box, v);
        } else {
          box.append(t);
        }
      });
      if (s.format) box.append(" (" + s.format + ")");
      if (s.contentEncoding) box.append(" (" + s.contentEncoding + ")");
    }
  }

  // facts are a schema's constraints, default, enum and examples, as a list.
  function facts(s) {
    if (!s || typeof s !== "object" || s.$ref) return null;
    const list = el("ul", { class: "facts" });
    const item = (label, ...v) => list.append(el("li", {}, el("span", { class: "fact", text: label }), " ", ...v));
    const values = s.enum || (s.items && !s.items.$ref && s.items.enum);
    if (values) item(s.enum ? "one of" : "items one of", ...values.flatMap((v, i) => [i ? " " : "", el("code", { class: "enum", text: JSON.stringify(v) })]));
    if (s.default !== undefined) item("default", el("code", { text: JSON.stringify(s.default) }));
    const bounds = [["minimum", "≥"], ["exclusiveMinimum", ">"], ["maximum", "≤"], ["exclusiveMaximum", "<"],
      ["minLength", "length ≥"], ["maxLength", "length ≤"], ["minItems", "items ≥"], ["maxItems", "items ≤"]];
    for (const [k, sym] of bounds) if (typeof s[k] === "number") item(sym, el("code", { text: String(s[k]) }));
    if (s.pattern) item("pattern", el("code", { text: s.pattern }));
    if (s.readOnly) item("read-only", "");
    if (s.writeOnly) item("write-only", "");
    if (s.deprecated) item("deprecated", "");
    if (s.example !== undefined) item("example", el("code", { text: JSON.stringify(s.example) }));
    if (Array.isArray(s.examples)) s.examples.forEach((x) => item("example", el("code", { text: JSON.stringify(x) })));
    return list.children.length ? list : null;
  }

  // schemaBlock shows a schema: a named $ref is a link (expanded when expand is true, as for a
  // request or response body), an object its table of properties, nested inline objects below
  // their property (a few levels deep).
  function schemaBlock(s, depth, expand) {
    const box = el("div", { class: "schema" });
    if (s && s.$ref) {
      const n = schemaRef(s.$ref);
      box.append(el("div", { class: "schema-type" }, typeNode(s)));
      if (!expand || !n) return box;
      s = deref(s).value;
      put(box, prose(s.description));
    } else {
      box.append(el("div", { class: "schema-type" }, typeNode(s)));
      if (s && s.description && depth === 0) put(box, prose(s.description));
    }
    if (!s || typeof s !== "object") return box;
    put(box, facts(s));
    const parts = s.allOf || s.oneOf || s.anyOf;
    if (parts && depth < 4) {
      const label = s.allOf ? "all of" : s.oneOf ? "one of" : "any of";
      const list = el("ol", { class: "variants", "aria-label": label });
      for (const p of parts) list.append(el("li", {}, schemaBlock(p, depth + 1, false)));
      box.append(el("div", { class: "fact", text: label }), list);
    }
    const props = s.properties || (s.items && !s.items.$ref && s.items.properties ? s.items.properties : null);
    if (props && depth < 4) {
      const owner = s.properties ? s : s.items;
      const required = new Set(owner.required || []);
      const rows = el("tbody");
      for (const [name, raw] of Object.entries(props)) {
        const ps = raw || {};
        const desc = el("td", { class: "desc" }, ps.$ref ? null : prose(ps.description), facts(ps));
        const nested = !ps.$ref && (ps.properties || ps.items && !ps.items.$ref && ps.items.properties || ps.allOf || ps.oneOf && ps.oneOf.some((x) => !x.$ref && x.properties));
        if (nested) desc.append(schemaBlock(ps, depth + 1, false));
        rows.append(el("tr", { "data-prop": name },
          el("th", { scope: "row" }, el("code", { text: name }), required.has(name) ? el("span", { class: "req", text: "required" }) : null),
          el("td", {}, typeNode(ps)), desc));
      }
      const ap = owner.additionalProperties;
      if (ap && typeof ap === "object") {
        rows.append(el("tr", { "data-prop": "*" }, el("th", { scope: "row" }, el("em", { text: "any other key" })), el("td", {}, typeNode(ap)), el("td")));
      }
      box.append(el("table", { class: "props" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Property" }), el("th", { scope: "col", text: "Type" }), el("th", { scope: "col", text: "Description" }))),
        rows));
      if (owner.additionalProperties === false) box.append(el("p", { class: "muted small", text: "No other key is accepted." }));
    }
    return box;
  }

  // ---------- operations ----------
  function opID(method, path, op) { return anchor("op", op.operationId || method + path); }

  function security(op) {
    const req = op.security !== undefined ? op.security : doc.security || [];
    if (!req.length || req.every((r) => Object.keys(r).length === 0)) return el("span", { class: "public", text: "none: public, no token" });
    const schemes = (doc.components && doc.components.securitySchemes) || {};
    const s = el("span", { class: "secured" });
    req.forEach((r, i) => {
      if (i) s.append(" or ");
      Object.entries(r).forEach(([name, scopes], j) => {
        if (j) s.append(" and ");
        const sc = deref(schemes[name] || {}).value;
        s.append(el("a", { href: "#" + anchor("security", name), text: name }),
          " (" + [sc.type, sc.scheme, sc.bearerFormat].filter(Boolean).join(" ") + (scopes && scopes.length ? "; " + scopes.join(", ") : "") + ")");
      });
    });
    return s;
  }

  function parameters(pathItem, op) {
    const byKey = new Map();
    for (const p of [...(pathItem.parameters || []), ...(op.parameters || [])]) {
      const v = deref(p).value;
      if (v && v.name) byKey.set(v.in + ":" + v.name, v);
    }
    if (!byKey.size) return null;
    const rows = el("tbody");
    for (const p of byKey.values()) {
      rows.append(el("tr", { "data-param": p.name },
        el("th", { scope: "row" }, el("code", { text: p.name }), p.required ? el("span", { class: "req", text: "required" }) : null),
        el("td", { text: p.in }),
        el("td", {}, typeNode(p.schema)),
        el("td", { class: "desc" }, prose(p.description), facts(p.schema && !p.schema.$ref ? p.schema : null),
          p.example !== undefined ? el("div", { class: "small" }, "example ", el("code", { text: JSON.stringify(p.example) })) : null)));
    }
    return el("section", { class: "op-part" }, el("h5", { text: "Parameters" }),
      el("table", { class: "props" }, el("thead", {}, el("tr", {}, ...["Name", "In", "Type", "Description"].map((h) => el("th", { scope: "col", text: h })))), rows));
  }

  function content(c) {
    const box = el("div", { class: "content" });
    for (const [type, media] of Object.entries(c || {})) {
      const m = media || {};
      const part = el("div", { class: "media", "data-media": type }, el("div", { class: "media-type" }, el("code", { text: type })));
      if (m.schema && Object.keys(m.schema).length) part.append(schemaBlock(m.schema, 0, true));
      if (m.example !== undefined) part.append(el("div", { class: "fact", text: "example" }), json(m.example));
      for (const [name, ex] of Object.entries(m.examples || {})) {
        const x = deref(ex).value || {};
        part.append(el("div", { class: "fact" }, "example " + name + (x.summary ? ": " + x.summary : "")), json(x.value));
      }
      box.append(part);
    }
    return box;
  }

  function requestBody(op) {
    if (!op.requestBody) return null;
    const rb = deref(op.requestBody).value || {};
    return el("section", { class: "op-part", "data-part": "request" },
      el("h5", {}, "Request body ", el("span", { class: rb.required ? "req" : "muted small", text: rb.required ? "required" : "optional" })),
      prose(rb.description), content(rb.content));
  }

  function responses(op) {
    const list = el("div", { class: "responses" });
    for (const [code, raw] of Object.entries(op.responses || {})) {
      const { value: r, name } = deref(raw);
      const res = r || {};
      const status = el("span", { class: "code", "data-class": code[0], text: code });
      const item = el("details", { class: "response", "data-status": code, open: /^[23]/.test(code) },
        el("summary", {}, status, " ", inline(res.description || ""), name ? el("span", { class: "muted small", text: " (" + name + ")" }) : null));
      const headers = Object.entries(res.headers || {});
      if (headers.length) {
        item.append(el("div", { class: "fact", text: "headers" }),
          el("ul", { class: "facts" }, ...headers.map(([h, hv]) => el("li", {}, el("code", { text: h }), " ", typeNode((deref(hv).value || {}).schema), " ", inline((deref(hv).value || {}).description || "")))));
      }
      if (res.content) item.append(content(res.content));
      list.append(item);
    }
    return el("section", { class: "op-part", "data-part": "responses" }, el("h5", { text: "Responses" }), list);
  }

  function operation(path, pathItem, method, op) {
    const key = method.toUpperCase() + " " + path;
    const d = el("details", { class: "op", id: opID(method, path, op), "data-op": key, "data-method": method, "data-path": path },
      el("summary", {},
        el("span", { class: "method", "data-method": method, text: method.toUpperCase() }), " ",
        el("code", { class: "path", text: path }), " ",
        el("span", { class: "op-summary", text: op.summary || "" }),
        op.deprecated ? el("span", { class: "req", text: "deprecated" }) : null));
    put(d, prose(op.description),
      el("p", { class: "op-security" }, el("span", { class: "fact", text: "Security" }), " ", security(op)),
      op.operationId ? el("p", { class: "small muted" }, "operationId ", el("code", { text: op.operationId })) : null,
      parameters(pathItem, op), requestBody(op), responses(op));
    return d;
  }

  function render() {
    const body = $("apidoc-body");
    const toc = $("apidoc-toc");
    body.textContent = "";
    toc.textContent = "";
    const info = doc.info || {};
    $("apidoc-title").textContent = (info.title || "API") + (info.version ? " " + info.version : "") + " · OpenAPI " + doc.openapi;
    const head = el("div", { class: "api-info" }, info.summary ? el("p", { class: "lead", text: info.summary }) : null, prose(info.description));
    const servers = (doc.servers || []).map((sv) => el("li", {}, el("code", { text: sv.url }), sv.description ? " " + sv.description : ""));
    if (servers.length) head.append(el("h4", { text: "Servers" }), el("ul", {}, ...servers));
    const schemes = Object.entries((doc.components && doc.components.securitySchemes) || {});
    if (schemes.length) {
      head.append(el("h4", { text: "Security" }), el("ul", {}, ...schemes.map(([name, raw]) => {
        const s = deref(raw).value || {};
        return el("li", { id: anchor("security", name), "data-scheme": name }, el("code", { text: name }), " ",
          [s.type, s.scheme, s.bearerFormat, s.in, s.name].filter(Boolean).join(" "), " ", inline(s.description || ""));
      })));
      head.append(el("p", {}, el("span", { class: "fact", text: "By default" }), " ", security({})));
    }
    body.append(head);

    // Operations by tag, in the document's tag order; an operation without a tag goes last.
    const groups = new Map();
    for (const t of doc.tags || []) groups.set(t.name, { tag: t, ops: [] });
    let count = 0;
    for (const [path, rawItem] of Object.entries(doc.paths || {})) {
      const item = deref(rawItem).value || {};
      for (const m of METHODS) {
        const op = item[m];
        if (!op) continue;
        count++;
        const tag = (op.tags && op.tags[0]) || "other";
        if (!groups.has(tag)) groups.set(tag, { tag: { name: tag }, ops: [] });
        groups.get(tag).ops.push(operation(path, item, m, op));
      }
    }
    const tocList = el("ul");
    for (const { tag, ops } of groups.values()) {
      if (!ops.length) continue;
      const id = anchor("tag", tag.name);
      body.append(el("section", { class: "tag-group", "data-tag": tag.name, "aria-labelledby": id + "-h" },
        el("h3", { id: id + "-h" }, tag.name, el("span", { class: "muted small", text: " " + ops.length + (ops.length === 1 ? " operation" : " operations") })),
        prose(tag.description), ...ops));
      tocList.append(el("li", {}, el("a", { href: "#" + id + "-h", text: tag.name })));
    }
    const names = Object.keys((doc.components && doc.components.schemas) || {}).sort();
    if (names.length) {
      const sec = el("section", { class: "tag-group", "aria-labelledby": "api-schemas-h" },
        el("h3", { id: "api-schemas-h" }, "Schemas", el("span", { class: "muted small", text: " " + names.length })));
      for (const n of names) {
        sec.append(el("details", { class: "op schema-def", id: anchor("schema", n), "data-schema": n },
          el("summary", {}, el("code", { class: "path", text: n })), schemaBlock(doc.components.schemas[n], 0, false)));
      }
      body.append(sec);
      tocList.append(el("li", {}, el("a", { href: "#api-schemas-h", text: "Schemas" })));
    }
    toc.append(tocList);
    $("apidoc").dataset.operations = String(count);
    filter();
  }

  // filter hides the operations and schemas whose method, path, summary or name do not hold
  // every word typed.
  function filter() {
    const words = $("apidoc-filter").value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const d of document.querySelectorAll("#apidoc-body details.op")) {
      const text = (d.dataset.op || d.dataset.schema || "") + " " + (d.querySelector(".op-summary") || { textContent: "" }).textContent;
      d.hidden = !words.every((w) => text.toLowerCase().includes(w));
    }
    for (const g of document.querySelectorAll("#apidoc-body .tag-group")) {
      g.hidden = words.length > 0 && !g.querySelector("details.op:not([hidden])");
    }
  }

  function toggleAll(open) {
    for (const d of document.querySelectorAll("#apidoc-body details.op:not([hidden])")) d.open = open;
  }

  // ---------- wiring ----------
  $("apidoc-filter").addEventListener("input", filter);
  $("apidoc-expand").addEventListener("click", () => toggleAll(true));
  $("apidoc-collapse").addEventListener("click", () => toggleAll(false));
  $("apidoc-retry").addEventListener("click", () => { $("apidoc-retry").hidden = true; load(); });
  $("openapi-link").append(el("a", { href: OPENAPI, text: "openapi.json", type: "application/json" }));
  $("asyncapi-link").append(el("a", { href: ASYNCAPI, text: "asyncapi.json", type: "application/json" }));
  window.addEventListener("hashchange", route);
  route();
})();
