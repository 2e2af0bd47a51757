"use strict";
// The contact sheet's behaviour. Every value from the data island is user- or ComfyUI-given
// text: it reaches the page only through textContent, property assignments and
// createElement, never innerHTML. Full files are fetched from this origin only (signed links).
(function () {
  const data = JSON.parse(document.getElementById("sheet-data").textContent);
  const sweep = data.sweep;
  const runs = data.runs;
  const STATUS_ORDER = ["succeeded", "failed", "cancelled", "running", "queued"];
  const state = { sort: "index", descending: false, status: "", search: "", filters: new Map() };
  let objectUrl = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // One text form per value, used for display, filter options and matching alike.
  function show(value) {
    if (value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === undefined) return 1;
    if (b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return show(a).localeCompare(show(b), undefined, { numeric: true });
  }

  function distinct(values) {
    const seen = new Map();
    for (const value of values) if (!seen.has(show(value))) seen.set(show(value), value);
    return Array.from(seen.values()).sort(compare);
  }

  const params = sweep.params.filter((p) => runs.some((run) => p in run.assignment));
  const varying = params.filter((p) => distinct(runs.map((r) => r.assignment[p])).length > 1);
  const fixed = params.filter((p) => !varying.includes(p));

  function buildHeader() {
    const top = document.getElementById("top");
    top.append(el("h1", "", sweep.workflow + " · sweep " + sweep.id));
    const facts = sweep.status + " · " + sweep.total + " runs · created " + sweep.created_at;
    top.append(el("p", "", facts));
    if (fixed.length) {
      const same = fixed.map((p) => p + " = " + show(runs[0].assignment[p])).join(" · ");
      top.append(el("p", "fixed", "Same in every run: " + same));
    }
    const line = el("p", "", "Links work until " + sweep.expires_at + " · ");
    const download = el("a", "", "Download zip");
    download.href = sweep.export_url;
    download.id = "export";
    line.append(download);
    top.append(line);
  }

  function select(id, label, options, onChange) {
    const wrap = el("label", "", label);
    const box = el("select");
    box.id = id;
    for (const [value, text] of options) {
      const option = el("option", "", text);
      option.value = value;
      box.append(option);
    }
    box.addEventListener("change", () => onChange(box.value));
    wrap.append(box);
    return wrap;
  }

  function buildControls() {
    const nav = document.getElementById("controls");
    const sorts = [["index", "run index"], ["status", "status"]];
    for (const p of params) sorts.push(["param:" + p, p]);
    nav.append(select("sort", "Sort by", sorts, (v) => { state.sort = v; apply(); }));
    const order = el("button", "", "ascending");
    order.id = "order";
    order.type = "button";
    order.addEventListener("click", () => {
      state.descending = !state.descending;
      order.textContent = state.descending ? "descending" : "ascending";
      apply();
    });
    nav.append(order);
    const statuses = distinct(runs.map((r) => r.status)).map((s) => [s, s]);
    nav.append(select("status", "Status", [["", "any"], ...statuses], (v) => {
      state.status = v;
      apply();
    }));
    for (const p of varying) nav.append(paramFilter(p));
    const search = el("input");
    search.id = "search";
    search.type = "search";
    search.placeholder = "text in any value";
    search.addEventListener("input", () => { state.search = search.value.toLowerCase(); apply(); });
    const wrap = el("label", "", "Search");
    wrap.append(search);
    nav.append(wrap);
    const count = el("span");
    count.id = "count";
    nav.append(count);
  }

  function paramFilter(p) {
    const values = distinct(runs.map((r) => r.assignment[p])).map((v) => [show(v), show(v)]);
    const wrap = select("", p, [["", "any"], ...values], (v) => {
      if (v === "") state.filters.delete(p); else state.filters.set(p, v);
      apply();
    });
    wrap.querySelector("select").dataset.param = p;
    return wrap;
  }

  function buildCard(run) {
    const card = el("figure", "card");
    card.dataset.index = String(run.index);
    card.dataset.status = run.status;
    const frame = el(run.files.length ? "button" : "div", "frame");
    if (run.thumb) {
      const img = el("img");
      img.src = run.thumb;
      img.alt = "run " + run.index;
      frame.append(img);
    } else {
      frame.append(el("span", "empty", run.files.length ? "no preview" : run.status));
    }
    if (run.files.length) {
      frame.type = "button";
      frame.addEventListener("click", () => openViewer(run, 0));
    }
    const overlay = el("ul", "overlay");
    for (const p of varying) {
      const item = el("li");
      item.append(el("b", "", p + ": "), document.createTextNode(show(run.assignment[p])));
      item.title = p + ": " + show(run.assignment[p]);
      overlay.append(item);
    }
    if (varying.length) frame.append(overlay);
    card.append(frame, caption(run));
    return card;
  }

  function caption(run) {
    const cap = el("figcaption");
    cap.append(el("span", "", "#" + run.index), el("span", "badge " + run.status, run.status));
    if (run.attempts > 1) cap.append(el("span", "attempts", run.attempts + " attempts"));
    if (run.files.length > 1) cap.append(el("span", "more", run.files.length + " files"));
    if (run.error) {
      const error = el("span", "error", run.error);
      error.title = run.error;
      cap.append(error);
    }
    return cap;
  }

  function sortKey(run) {
    if (state.sort === "index") return run.index;
    if (state.sort === "status") return STATUS_ORDER.indexOf(run.status);
    return run.assignment[state.sort.slice("param:".length)];
  }

  function matches(run) {
    if (state.status && run.status !== state.status) return false;
    for (const [p, wanted] of state.filters) if (show(run.assignment[p]) !== wanted) return false;
    if (!state.search) return true;
    const texts = [String(run.index), ...Object.values(run.assignment).map(show)];
    return texts.some((text) => text.toLowerCase().includes(state.search));
  }

  const cards = runs.map((run) => ({ run, node: buildCard(run) }));
  const container = document.getElementById("cards");

  function apply() {
    const ordered = cards.slice().sort((a, b) => {
      const order = compare(sortKey(a.run), sortKey(b.run)) || a.run.index - b.run.index;
      return state.descending ? -order : order;
    });
    let shown = 0;
    for (const card of ordered) {
      card.node.hidden = !matches(card.run);
      if (!card.node.hidden) shown += 1;
      container.append(card.node); // moves the existing node: no rebuilding, images stay
    }
    document.getElementById("count").textContent = shown + " of " + runs.length + " runs";
  }

  // --- the viewer: the full file of a run, with all its parameters ---

  const viewer = document.getElementById("viewer");

  function closeViewer() {
    viewer.hidden = true;
    viewer.replaceChildren();
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
  }

  function showFile(stage, file) {
    if (file.kind === "video" || file.kind === "audio") {
      const media = el(file.kind);
      media.controls = true;
      media.src = file.url;
      stage.append(media);
      return;
    }
    if (file.kind !== "image") {
      stage.append(el("p", "", "No preview for " + file.mime));
      return;
    }
    // Fetched and shown as a blob: URL, so img-src needs nothing but data: and blob:.
    fetch(file.url, { credentials: "omit", referrerPolicy: "no-referrer" })
      .then((response) => {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.blob();
      })
      .then((blob) => {
        if (objectUrl) URL.revokeObjectURL(objectUrl);
        objectUrl = URL.createObjectURL(blob);
        const img = el("img");
        img.id = "full";
        img.alt = "output " + file.n;
        img.src = objectUrl;
        stage.replaceChildren(img);
      })
      .catch((error) => stage.replaceChildren(el("p", "", "Could not load: " + error.message)));
  }

  function details(run, n) {
    const aside = el("aside");
    const close = el("button", "close", "close ✕");
    close.type = "button";
    close.addEventListener("click", closeViewer);
    aside.append(close, el("h2", "", "Run #" + run.index + " · " + run.status));
    const files = el("div", "files");
    run.files.forEach((file, i) => {
      const pick = el("button", "", file.kind + " " + file.n);
      pick.type = "button";
      pick.setAttribute("aria-pressed", String(i === n));
      pick.addEventListener("click", () => openViewer(run, i));
      files.append(pick);
    });
    const original = el("a", "", "open original");
    original.href = run.files[n].url;
    original.target = "_blank";
    original.rel = "noopener noreferrer";
    files.append(original);
    aside.append(files);
    const table = el("table");
    // In the sweep's parameter order (axes first): the stored JSON keeps no key order.
    for (const key of params.filter((p) => p in run.assignment)) {
      const row = el("tr");
      row.append(el("td", "", key), el("td", "", show(run.assignment[key])));
      table.append(row);
    }
    aside.append(table);
    if (run.error) aside.append(el("p", "error-text", run.error));
    return aside;
  }

  function openViewer(run, n) {
    closeViewer();
    const stage = el("div", "stage");
    stage.addEventListener("click", (event) => { if (event.target === stage) closeViewer(); });
    viewer.append(stage, details(run, n));
    viewer.hidden = false;
    showFile(stage, run.files[n]);
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !viewer.hidden) closeViewer();
  });

  buildHeader();
  buildControls();
  apply();
})();
