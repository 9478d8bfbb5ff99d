// The campaign editor: a Drawflow canvas (vendored, MIT) holding the campaign graph, a palette,
// a side panel that edits the selected node's config, and the API calls (save, activate, pause,
// versions, preview and run for a date). Node configs live in Drawflow's node data; the saved
// document is built from it, so what is on the canvas is what is saved.
"use strict";

(() => {
  const {api, el, figures, label, message} = nf;
  const boot = nf.boot();
  const NODE_HTML = '<div class="nf-node"><div class="nf-title"></div><div class="nf-summary"></div>' +
    '<div class="nf-counts"></div><ul class="nf-errors"></ul></div>';

  const state = {
    campaign: boot.campaign ? {...boot.campaign} : {key: "", name: "", status: "draft",
      purpose: "marketing", timezone: "UTC", version: 0, graph: {nodes: [], edges: []}},
    isNew: !boot.campaign,
    dirty: false,
    viewing: null,          // an older version shown read-only
    sentNodes: [],          // node ids in the order of the last document sent
    sentEdges: [],          // and its edges
    errors: {},             // node id -> [{field, message}]
    selected: null,         // Drawflow id of the selected node
  };

  const canvas = document.getElementById("drawflow");
  const editor = new Drawflow(canvas);
  editor.reroute = false;
  editor.start();
  if (!boot.can_write) editor.editor_mode = "view";
  const {TYPES, outputLabels, defaults, summary, FORMS, field, select_, text, rulesField} = nf.editorNodes({
    boot, editor, editable: () => editable(),
    touched: () => { state.dirty = true; if (state.selected) paint(state.selected); }});
  const outputCount = (data) => Math.max(1, outputLabels(data).length);

  const panel = document.getElementById("panel");
  const panelTitle = document.getElementById("panel-title");
  const alertBox = document.querySelector("#editor-messages .form-error");
  const doneBox = document.querySelector("#editor-messages .form-done");
  const banner = document.getElementById("readonly-banner");
  const dateInput = document.getElementById("preview-date");
  const versionSelect = document.getElementById("version-select");
  dateInput.value = boot.today;

  // Drawflow hears keys (Delete) on the canvas only: a click on it takes the focus there.
  canvas.addEventListener("mousedown", () => canvas.focus({preventScroll: true}));

  // ---- the graph on the canvas -------------------------------------------------------------
  const nodes = () => editor.drawflow.drawflow.Home.data;

  function freshId(type) {
    const taken = new Set(Object.values(nodes()).map((n) => n.data.nid));
    let i = 1;
    while (taken.has(`${TYPES[type].prefix}${i}`)) i += 1;
    return `${TYPES[type].prefix}${i}`;
  }

  function addNode(type, x, y, nid, config) {
    const data = {nid: nid || freshId(type), type, config: config || defaults(type)};
    const id = editor.addNode(type, TYPES[type].inputs, outputCount(data), x, y, `nf-${type}`, data, NODE_HTML);
    paintAll();
    return id;
  }

  // A node as a marketer reads it: its type and the saved segment or template it uses
  // ("Send message: Birthday SMS"), the rule of engine/labels.py node_title(); the id only
  // where two titles would be the same.
  const names = {segments: Object.fromEntries(boot.segments.map((x) => [x.key, x.name])),
                 templates: Object.fromEntries(boot.templates.map((x) => [x.key, x.name]))};
  function baseTitle(node) {
    const kind = label(node.data.type, "node_types"), c = node.data.config;
    if (c.segment) return `${kind}: ${names.segments[c.segment] || c.segment}`;
    if (c.template) return `${kind}: ${names.templates[c.template] || c.template}`;
    return kind;
  }
  function title(id) {
    const mine = baseTitle(nodes()[id]);
    const twin = Object.entries(nodes()).some(([other, n]) => other !== String(id) && baseTitle(n) === mine);
    return twin ? `${mine} (${nodes()[id].data.nid})` : mine;
  }

  // Fill a node's box (title, summary, errors) with text; never with HTML. A box that grows
  // or shrinks moves its dots (Drawflow centres them), so its lines are redrawn to follow.
  function paint(id) {
    const node = nodes()[id];
    const element = document.getElementById(`node-${id}`);
    if (!node || !element) return;
    element.dataset.nid = node.data.nid;
    element.querySelector(".nf-title").textContent = title(id);
    element.querySelector(".nf-summary").textContent = summary(node.data.type, node.data.config);
    const list = element.querySelector(".nf-errors");
    list.replaceChildren(...(state.errors[node.data.nid] || []).map((e) => el("li", {}, e.message)));
    element.classList.toggle("has-error", list.children.length > 0);
    labelDots(id);
    editor.updateConnectionNodes(`node-${id}`);
  }

  // Each labelled dot shows its label (CSS draws data-label), with the preview's count if any.
  function labelDots(id, counts) {
    const labels = outputLabels(nodes()[id].data);
    document.querySelectorAll(`#node-${id} .outputs .output`).forEach((dot, i) => {
      const name = labels[i];
      if (name === null || name === undefined) { delete dot.dataset.branch; delete dot.dataset.label; return; }
      dot.dataset.branch = name;
      dot.dataset.label = counts ? `${name || "?"} ${counts[name] ?? 0}` : name || "?";
      dot.title = `Customers on branch ${name || "?"} leave from this dot`;
    });
  }

  // Titles depend on the other nodes (a twin gets its id): repaint them all.
  const paintAll = () => Object.keys(nodes()).forEach(paint);

  // Preview and run figures: "passed 5 · yes 3 · no 2" (branches in dot order) on the node,
  // and each branch's count on its dot.
  function nodeFigures(node, counts) {
    if (!counts) return "0";
    const labels = outputLabels(node.data).filter((l) => l !== null);
    const rest = {...counts};
    labels.forEach((l) => delete rest[l]);
    const {passed, ...others} = rest;
    return [passed === undefined ? "" : `passed ${passed}`, ...labels.map((l) => `${l} ${counts[l] ?? 0}`),
            figures(others)].filter(Boolean).join(" · ") || "0";
  }

  function setCounts(counts) {
    for (const [id, node] of Object.entries(nodes())) {
      const box = document.querySelector(`#node-${id} .nf-counts`);
      if (box) box.textContent = counts ? nodeFigures(node, counts[node.data.nid]) : "";
      labelDots(id, counts && (counts[node.data.nid] || {}));
      editor.updateConnectionNodes(`node-${id}`);
    }
  }

  function documentFromCanvas() {
    const list = Object.values(nodes()).sort((a, b) => a.id - b.id);
    state.sentNodes = list.map((n) => n.data.nid);
    const edges = [];
    for (const n of list) {
      outputLabels(n.data).forEach((name, i) => {
        for (const link of (n.outputs[`output_${i + 1}`] || {connections: []}).connections) {
          const edge = [n.data.nid, nodes()[link.node].data.nid];
          edges.push(name === null ? edge : [...edge, name]);
        }
      });
    }
    state.sentEdges = edges;
    const c = state.campaign;
    return {key: c.key, name: c.name, status: c.status, purpose: c.purpose, timezone: c.timezone,
            graph: {nodes: list.map((n) => ({id: n.data.nid, type: n.data.type, config: n.data.config,
                                             position: {x: Math.round(n.pos_x), y: Math.round(n.pos_y)}})),
                    edges, ...(state.exitWhen ? {exit_when: state.exitWhen} : {})}};
  }

  // Positions from the document, or a left-to-right layout by depth for files without them.
  function layout(graph) {
    const depth = {};
    const parents = {};
    for (const [a, b] of graph.edges) (parents[b] = parents[b] || []).push(a);
    const depthOf = (id, seen = new Set()) => {
      if (depth[id] !== undefined) return depth[id];
      if (seen.has(id)) return 0;
      seen.add(id);
      depth[id] = Math.max(-1, ...(parents[id] || []).map((p) => depthOf(p, seen))) + 1;
      return depth[id];
    };
    const rows = {};
    return Object.fromEntries(graph.nodes.map((n) => {
      if (n.position) return [n.id, n.position];
      const d = depthOf(n.id);
      rows[d] = (rows[d] || 0) + 1;
      // A zigzag keeps a four-step chain inside the canvas at 1280x800.
      return [n.id, {x: 20 + d * 170, y: 40 + (d % 2) * 120 + (rows[d] - 1) * 240}];
    }));
  }

  function loadGraph(graph) {
    editor.clear();
    state.exitWhen = graph.exit_when || undefined;   // kept in the graph: versioned with it
    const at = layout(graph);
    const ids = {};
    for (const n of graph.nodes) {
      ids[n.id] = addNode(n.type, at[n.id].x, at[n.id].y, n.id, JSON.parse(JSON.stringify(n.config)));
    }
    for (const [a, b, name] of graph.edges) {
      if (!ids[a] || !ids[b] || !TYPES[nodes()[ids[b]].data.type].inputs) continue;
      // A labelled edge leaves from its branch's dot; an unlabelled one from the first.
      const dot = name === undefined ? 1 : outputLabels(nodes()[ids[a]].data).indexOf(name) + 1;
      if (dot > 0) editor.addConnection(ids[a], ids[b], `output_${dot}`, "input_1");
    }
    showCampaignPanel();
  }

  // ---- palette: drag and drop, or a click / Enter for the keyboard ----------------------------
  function canvasPoint(clientX, clientY) {
    const rect = editor.precanvas.getBoundingClientRect();
    return {x: (clientX - rect.x) / editor.zoom, y: (clientY - rect.y) / editor.zoom};
  }

  // Where a node added by click or Enter goes: the free cell of a grid over the part of the
  // canvas in view (zoom and pan included) nearest to the right of the selected node (the
  // flow runs left to right), else nearest the view's top left. With no free cell in view,
  // below the lowest node, and the view pans down to it.
  const CELL = {w: 215, h: 135}, NODE = {w: 200, h: 115};   // a node's box with its dots
  function freeSpot() {
    const rect = canvas.getBoundingClientRect();
    const from = canvasPoint(rect.left, rect.top), to = canvasPoint(rect.right, rect.bottom);
    const boxes = Object.entries(nodes()).map(([id, n]) => {
      const box = document.getElementById(`node-${id}`);
      return {x: n.pos_x - 15, y: n.pos_y - 15, w: box.offsetWidth + 30, h: box.offsetHeight + 30};
    });
    const free = (x, y) => !boxes.some((b) => x < b.x + b.w && b.x < x + NODE.w && y < b.y + b.h && b.y < y + NODE.h);
    const cells = [];
    for (let y = from.y + 15; y + NODE.h <= to.y; y += CELL.h) {
      for (let x = from.x + 15; x + NODE.w <= to.x; x += CELL.w) if (free(x, y)) cells.push({x, y});
    }
    const near = state.selected && nodes()[state.selected];
    const anchor = near ? {x: near.pos_x + CELL.w, y: near.pos_y} : from;
    const distance = (p) => (p.x - anchor.x) ** 2 + (p.y - anchor.y) ** 2;
    if (cells.length) return cells.reduce((best, p) => (distance(p) < distance(best) ? p : best));
    const spot = {x: from.x + 15, y: Math.max(from.y, ...boxes.map((b) => b.y + b.h)) + 15};
    editor.canvas_y -= (spot.y + NODE.h - to.y) * editor.zoom;
    editor.precanvas.style.transform = `translate(${editor.canvas_x}px, ${editor.canvas_y}px) scale(${editor.zoom})`;
    return spot;
  }

  for (const item of document.querySelectorAll(".palette-item")) {
    item.addEventListener("dragstart", (event) => {
      event.dataTransfer.setData("text/x-nudgeflow-node", item.dataset.node);
      event.dataTransfer.effectAllowed = "copy";
    });
    item.addEventListener("click", () => {
      if (!editable()) return;
      const p = freeSpot();
      select(addNode(item.dataset.node, p.x, p.y));
    });
  }
  canvas.addEventListener("dragover", (event) => event.preventDefault());
  canvas.addEventListener("drop", (event) => {
    event.preventDefault();
    const type = event.dataTransfer.getData("text/x-nudgeflow-node");
    if (!TYPES[type] || !editable()) return;
    const p = canvasPoint(event.clientX, event.clientY);
    select(addNode(type, p.x - 100, p.y - 30));
  });

  document.getElementById("zoom-in").addEventListener("click", () => editor.zoom_in());
  document.getElementById("zoom-out").addEventListener("click", () => editor.zoom_out());
  document.getElementById("zoom-reset").addEventListener("click", () => editor.zoom_reset());

  const editable = () => boot.can_write && !state.viewing;
  const changed = () => { state.dirty = true; setCounts(null); showSample([]); };
  editor.on("nodeCreated", changed);
  // Drawflow 0.0.60 can leave a dragged node's stored position a step off from where it is
  // drawn; what the user sees is what gets saved.
  editor.on("nodeMoved", (id) => {
    const node = nodes()[id], box = document.getElementById(`node-${id}`);
    node.pos_x = parseFloat(box.style.left);
    node.pos_y = parseFloat(box.style.top);
    state.dirty = true;
  });
  editor.on("connectionCreated", changed);
  editor.on("connectionRemoved", changed);
  editor.on("nodeRemoved", () => { changed(); paintAll(); state.selected = null; showCampaignPanel(); });
  editor.on("nodeSelected", (id) => { state.selected = String(id); showNodePanel(String(id)); });
  editor.on("nodeUnselected", () => { state.selected = null; showCampaignPanel(); });
  window.addEventListener("beforeunload", (event) => { if (state.dirty) event.preventDefault(); });

  function select(id) {
    document.querySelectorAll(".drawflow-node.selected").forEach((n) => n.classList.remove("selected"));
    const element = document.getElementById(`node-${id}`);
    element.classList.add("selected");
    editor.node_selected = element;
    state.selected = String(id);
    showNodePanel(String(id));
  }

  function unselect() {
    document.querySelectorAll(".drawflow-node.selected").forEach((n) => n.classList.remove("selected"));
    editor.node_selected = null;
    state.selected = null;
    showCampaignPanel();
  }

  // ---- the side panel -------------------------------------------------------------------------
  function showCampaignPanel() {
    panelTitle.textContent = "Campaign";
    const c = state.campaign;
    const set = (name) => (v) => { c[name] = v ?? ""; state.dirty = true; refreshTitle(); };
    const key = text(c.key, set("key"), {required: true, pattern: boot.key_pattern});
    if (!state.isNew) key.readOnly = true;
    panel.replaceChildren(
      field("Name", text(c.name, set("name"), {required: true}), "name"),
      field("Key (used in URLs and files)", key, "key"),
      field("Purpose", select_([["marketing", "marketing (needs consent)"], ["service", "service"]],
                               c.purpose, set("purpose")), "purpose"),
      field("Time zone (IANA)", text(c.timezone, set("timezone")), "timezone"),
      rulesField("Leave the journey when (rules, JSON; empty = never)", state.exitWhen,
                 (v) => { state.exitWhen = v; }, "exit_when", true),
      el("p", {class: "hint"}, "Checked when a wait ends: a customer who matches then goes no further."),
      el("p", {class: "hint"}, "Select a node on the canvas to edit it."),
      nodeList(),
      ...(boot.can_run && !state.isNew ? [stopAndArchive()] : []),
    );
    markPanelErrors(state.errors.$campaign || []);
  }

  // The STOP button (cancel what waits to be sent) and archiving.
  function stopAndArchive() {
    const key = state.campaign.key;
    return el("div", {class: "connections"}, el("h3", {}, "Stop"),
      el("button", {type: "button", class: "danger", id: "btn-stop", onclick: async () => {
        if (!window.confirm(`Cancel every queued and held message of ${key}?`)) return;
        try {
          const answer = await api("POST", "/api/v1/messages/cancel", {campaign: key});
          say(`Cancelled ${answer.count} waiting message${answer.count === 1 ? "" : "s"}` +
              (answer.on_their_way ? `; ${answer.on_their_way} already on their way end as ` +
                                     "the provider answers." : "."));
        } catch (error) { fail(error.message); }
      }}, "Stop sending"), " ",
      el("button", {type: "button", class: "danger", onclick: async () => {
        if (!window.confirm(`Archive ${key}? It will no longer run.`)) return;
        await setStatus("archive");
      }}, "Archive"),
      el("p", {class: "hint"}, "Stop sending cancels the messages still waiting (queued or " +
         "held for credit); Archive also stops the daily runs."));
  }

  // A keyboard route to every node: pick it from a list.
  function nodeList() {
    const items = Object.entries(nodes()).map(([id, n]) =>
      el("li", {}, el("button", {type: "button", class: "link", onclick: () => select(id)},
                      title(id))));
    return el("div", {}, el("h3", {}, "Nodes"), items.length ? el("ul", {class: "plain"}, items) :
      el("p", {class: "hint"}, "The canvas is empty: drag a Trigger from the palette to start."));
  }

  function showNodePanel(id) {
    const node = nodes()[id];
    if (!node) return showCampaignPanel();
    const c = node.data.config;
    panelTitle.textContent = title(id);
    const update = (mutate, structural) => (value) => {
      mutate(value);
      state.dirty = true;
      setCounts(null);
      paintAll();
      if (structural) showNodePanel(id);
    };
    const put = (name, structural) => update((v) => { if (v === undefined) delete c[name]; else c[name] = v; }, structural);
    const rows = FORMS[node.data.type](c, put, update, id);
    panel.replaceChildren(...rows, connections(id),
                          el("p", {class: "hint"}, `Node id ${node.data.nid} (in error messages and the runs' exports)`));
    markPanelErrors(state.errors[node.data.nid] || []);
  }

  // Outgoing connections, editable from the keyboard too: one list per dot (branch).
  function connections(id) {
    const node = nodes()[id];
    const box = el("div", {class: "connections"}, el("h3", {}, "Passes customers to"));
    outputLabels(node.data).forEach((name, i) => {
      const dot = `output_${i + 1}`;
      const out = node.outputs[dot] || {connections: []};
      const links = out.connections.map((link) => el("li", {}, `→ ${title(link.node)} `,
        editable() ? el("button", {type: "button", class: "link",
          onclick: () => { editor.removeSingleConnection(id, link.node, dot, "input_1"); showNodePanel(id); }},
          "disconnect") : null));
      const targets = Object.entries(nodes()).filter(([other, n]) => other !== id && TYPES[n.data.type].inputs &&
        !out.connections.some((l) => l.node === other));
      const group = name === null ? box
        : box.appendChild(el("div", {class: "branch", "data-branch": name}, el("h4", {}, `On ${name || "?"}`)));
      group.append(links.length ? el("ul", {class: "plain"}, links) : el("p", {class: "hint"}, "nothing yet"));
      if (editable() && targets.length) {
        group.append(field(name === null ? "Connect to" : `Connect ${name || "?"} to`,
          select_([["", "choose a node"], ...targets.map(([other]) => [other, title(other)])], "",
            (v) => { if (v) { editor.addConnection(id, v, dot, "input_1"); showNodePanel(id); } })));
      }
    });
    if (editable()) {
      box.append(el("button", {type: "button", class: "danger", onclick: () => editor.removeNodeId(`node-${id}`)},
                    "Delete node"), " ");
    }
    box.append(el("button", {type: "button", onclick: unselect}, "Back to the campaign"));
    return box;
  }

  function markPanelErrors(errors) {
    for (const e of errors) {
      const target = panel.querySelector(`[data-field="${e.field}"]`);
      const wrap = target ? (target.closest(".field") || target) : null;
      if (target) target.setAttribute("aria-invalid", "true");
      (wrap || panel).append(el("p", {class: "field-error"}, e.message));
    }
  }

  // ---- talking to the API ------------------------------------------------------------------
  function refreshTitle() {
    const c = state.campaign;
    document.getElementById("campaign-title").textContent = c.name || "New campaign";
    const status = document.getElementById("campaign-status");
    status.textContent = state.isNew ? "not saved" : c.status;
    status.className = `status status-${c.status}`;
    document.getElementById("campaign-version").textContent = state.isNew ? "" : `version ${c.version}`;
    const canRun = boot.can_run && !state.isNew && !state.viewing;
    document.getElementById("btn-save").disabled = !editable();
    document.getElementById("btn-activate").disabled = !canRun || c.status === "active";
    document.getElementById("btn-pause").disabled = !canRun || c.status !== "active";
    document.getElementById("btn-preview").disabled = !boot.can_write || state.isNew || !!state.viewing;
    document.getElementById("btn-run").disabled = !canRun;
  }

  function say(text) { message(alertBox, ""); message(doneBox, text); }
  function fail(text) { message(doneBox, ""); message(alertBox, text); }

  // Server errors: $.graph.nodes[i]... lands on the i-th node sent, $.graph.edges[j]... on the
  // j-th edge's source, $.exit_when... on the campaign's field; the rest above the canvas.
  function showErrors(error) {
    state.errors = {};
    const loose = [];
    for (const d of error.details || []) {
      const m = /^\$\.graph\.nodes\[(\d+)\](?:\.config\.([A-Za-z_]+))?/.exec(d.path || "");
      const edge = /^\$\.graph\.edges\[(\d+)\]/.exec(d.path || "");
      const nid = m ? state.sentNodes[Number(m[1])] : edge && (state.sentEdges[Number(edge[1])] || [])[0];
      const top = /^\$\.(?:graph\.)?(exit_when)\b|^\$\.([a-z_]+)$/.exec(d.path || "");
      if (nid) (state.errors[nid] = state.errors[nid] || []).push({field: (m && m[2]) || "", message: d.message});
      else if (top) (state.errors.$campaign = state.errors.$campaign || []).push({field: top[1] || top[2], message: d.message});
      else loose.push(d.message);
    }
    paintAll();
    const marked = Object.keys(state.errors).some((k) => k !== "$campaign") ? "see the marked nodes"
      : "see the marked fields";
    fail(loose.length ? `${error.message}: ${loose.join("; ")}` : `${error.message}; ${marked}.`);
    if (state.selected) showNodePanel(state.selected); else showCampaignPanel();
  }

  function clearErrors() {
    state.errors = {};
    paintAll();
  }

  async function save() {
    const doc = documentFromCanvas();
    const before = state.campaign.version;
    try {
      const saved = state.isNew ? await api("POST", "/api/v1/campaigns", doc)
        : await api("PUT", `/api/v1/campaigns/${encodeURIComponent(state.campaign.key)}`, doc);
      Object.assign(state.campaign, saved);
      if (state.isNew) {
        state.isNew = false;
        history.replaceState(null, "", `/campaigns/${encodeURIComponent(saved.key)}/edit`);
      }
      state.dirty = false;
      clearErrors();
      refreshTitle();
      if (state.selected) showNodePanel(state.selected); else showCampaignPanel();
      await loadVersions();
      say(saved.version === before ? `No changes: still version ${saved.version}.`
        : `Saved as version ${saved.version}.`);
      return true;
    } catch (error) {
      showErrors(error);
      return false;
    }
  }

  async function setStatus(action) {
    try {
      const answer = await api("POST", `/api/v1/campaigns/${encodeURIComponent(state.campaign.key)}/${action}`);
      state.campaign.status = answer.status;
      refreshTitle();
      say(`The campaign is ${answer.status}.`);
    } catch (error) { fail(error.message); }
  }

  async function runFor(action) {
    if (state.dirty && !(await save())) return;
    const day = dateInput.value;
    if (action === "run" && !window.confirm(`Run "${state.campaign.name}" for ${day}? ` +
        "Points are awarded and messages queued for real.")) return;
    try {
      const result = await api("POST", `/api/v1/campaigns/${encodeURIComponent(state.campaign.key)}/${action}`,
                               day ? {date: day} : {});
      setCounts(result.counts);
      showSample(result.sample || []);
      if (result.status === "failed") return fail(`The run failed: ${result.error}`);
      say(action === "run" ? `Run for ${result.date}: ${result.status} in ${result.seconds.toFixed(2)} s. ` +
          "Counts are on the nodes; the runs log has the details."
        : `Preview for ${result.date} (nothing written): counts are on the nodes.`);
    } catch (error) { showErrors(error); }
  }

  // Who a preview reaches at the last node, each a link to their page.
  function showSample(sample) {
    const box = document.getElementById("preview-sample");
    box.hidden = !sample.length;
    box.replaceChildren(...(sample.length ? ["Reaches, for example: "] : []), ...sample.flatMap((c, i) => [
      i ? ", " : "",
      el("a", {href: `/customers/${encodeURIComponent(c.external_id)}`},
         `${c.external_id} ${c.first_name || ""} ${c.last_name || ""}`.trim())]));
  }

  async function loadVersions() {
    if (state.isNew) { versionSelect.replaceChildren(el("option", {}, "not saved yet")); versionSelect.disabled = true; return; }
    const versions = await api("GET", `/api/v1/campaigns/${encodeURIComponent(state.campaign.key)}/versions`);
    state.versions = versions;
    versionSelect.disabled = false;
    versionSelect.replaceChildren(...versions.slice().reverse().map((v) => el("option", {value: v.version},
      `v${v.version} · ${v.saved_at.slice(0, 16).replace("T", " ")}${v.saved_by ? ` · ${v.saved_by}` : ""}` +
      (v.version === state.campaign.version ? " (current)" : ""))));
    versionSelect.value = String(state.viewing || state.campaign.version);
  }

  let working = null;   // the current graph, kept while an older version is on show
  versionSelect.addEventListener("change", () => {
    const version = Number(versionSelect.value);
    if (version === state.campaign.version) {
      state.viewing = null;
      editor.editor_mode = boot.can_write ? "edit" : "view";
      if (working) loadGraph(working);
      working = null;
      message(banner, "");
    } else {
      if (!state.viewing) working = documentFromCanvas().graph;
      const dirty = state.dirty;
      state.viewing = version;
      loadGraph(state.versions.find((v) => v.version === version).graph);
      state.dirty = dirty;
      editor.editor_mode = "view";
      message(banner, `Viewing version ${version} (read-only). Choose the current version in History to edit.`);
    }
    refreshTitle();
    showCampaignPanel();
  });

  document.getElementById("btn-save").addEventListener("click", save);
  document.getElementById("btn-activate").addEventListener("click", () => setStatus("activate"));
  document.getElementById("btn-pause").addEventListener("click", () => setStatus("pause"));
  document.getElementById("btn-preview").addEventListener("click", () => runFor("preview"));
  document.getElementById("btn-run").addEventListener("click", () => runFor("run"));

  loadGraph(state.campaign.graph);
  state.dirty = false;
  refreshTitle();
  loadVersions().catch((error) => fail(error.message));
})();
