// Grey dashboard: hash-routed views over /dashboard/api/*, kept live by one WebSocket.
// No inline script or style (the CSP forbids them); text is set with textContent only.

const BASE = "/dashboard";
const $ = (selector, root = document) => root.querySelector(selector);
const TERMINAL = new Set(["completed", "failed", "cancelled", "timeout"]);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options = {}) {
  const method = options.method || "GET";
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-Grey-Dashboard"] = "1";
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(BASE + path, {
    method,
    headers,
    credentials: "same-origin",
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (response.status === 401 && path !== "/session") { showSignIn(); }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

const time = (value) => (value ? new Date(typeof value === "number" ? value * 1000 : value).toLocaleTimeString() : "-");
const bytes = (n) => {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
};
const fixed = (n) => (typeof n === "number" ? (Math.round(n * 100) / 100).toString() : "-");

// -- state --------------------------------------------------------------------------------------

const state = {
  me: null,
  view: null,
  taskId: null,
  cursors: [],        // the tasks list: cursor of the page shown (null: first)
  nextCursor: null,
  cluster: null,
  socket: null,
  retry: 0,
  completions: [],    // [{at, latency}] from live task events
  live: [],           // the open task's events from the socket (a read may answer older)
  asOf: null,
};

// -- sign-in ------------------------------------------------------------------------------------

function showSignIn(message) {
  state.me = null;
  closeSocket();
  for (const section of document.querySelectorAll("main > section")) section.hidden = true;
  $("#view-sign-in").hidden = false;
  $("#nav").hidden = true;
  $("#sign-out").hidden = true;
  $("#signed-in-tenant").textContent = "";
  const error = $("#sign-in-error");
  error.hidden = !message;
  error.textContent = message || "";
}

async function signIn(event) {
  event.preventDefault();
  const input = $("#api-key");
  const key = input.value.trim();
  if (!key) { showSignIn("Enter an API key or token"); return; }
  try {
    const me = await api("/session", { method: "POST", body: { api_key: key } });
    input.value = "";
    signedIn(me);
  } catch (error) {
    showSignIn(error.message || "Sign-in failed");
  }
}

async function signOut() {
  try { await api("/session", { method: "DELETE" }); } catch { /* the cookie goes anyway */ }
  showSignIn();
}

function signedIn(me) {
  state.me = me;
  $("#view-sign-in").hidden = true;
  $("#sign-in-error").hidden = true;
  $("#nav").hidden = false;
  $("#sign-out").hidden = false;
  $("#signed-in-tenant").textContent = me.tenant_id;
  openSocket();
  if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = "#/tasks";
  else route();
}

// -- routing ------------------------------------------------------------------------------------

function route() {
  if (!state.me) return;
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const name = parts[0] || "tasks";
  const taskId = name === "tasks" && parts[1] ? decodeURIComponent(parts[1]) : null;
  const view = taskId ? "task" : name;
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `view-${view}`;
  for (const link of document.querySelectorAll("a[data-nav]")) link.classList.toggle("active", link.dataset.nav === name);
  state.view = view;
  watch(taskId);
  if (taskId !== state.taskId) state.live = [];
  state.taskId = taskId;
  if (view === "tasks") loadTasks(state.cursors.length ? state.cursors[state.cursors.length - 1] : null);
  else if (view === "task") loadTask(taskId);
  else if (view === "cluster") loadCluster();
  else if (view === "models") loadModels();
  else if (view === "capacity") loadCapacity();
}

// -- tasks --------------------------------------------------------------------------------------

function taskFilters() {
  const params = new URLSearchParams();
  const pairs = [["status", "#filter-status"], ["type", "#filter-type"], ["priority", "#filter-priority"], ["pool", "#filter-pool"]];
  for (const [name, selector] of pairs) {
    const value = $(selector).value.trim();
    if (value) params.set(name, value);
  }
  const label = $("#filter-label").value.trim();
  if (label) params.append("label", label);
  return params;
}

function statusCell(status) {
  return el("td", { "data-field": "status", className: `status-${status}`, text: status });
}

function taskRow(task) {
  return el(
    "tr",
    { "data-task-id": task.task_id },
    el("td", {}, el("a", { href: `#/tasks/${encodeURIComponent(task.task_id)}`, text: task.task_id })),
    statusCell(task.status),
    el("td", { text: task.type }),
    el("td", { text: task.api || "" }),
    el("td", { text: task.priority }),
    el("td", { text: task.pool }),
    el("td", { "data-field": "progress", text: `${task.progress}%` }),
    el("td", { text: time(task.created_at) }),
    el("td", { "data-field": "worker", text: task.executed_on || "" }),
  );
}

async function loadTasks(cursor) {
  const params = taskFilters();
  if (cursor) params.set("cursor", cursor);
  try {
    const page = await api(`/api/tasks?${params}`);
    const body = $("#tasks tbody");
    body.replaceChildren(...page.tasks.map(taskRow));
    state.nextCursor = page.next_cursor;
    $("#tasks-next").disabled = !page.has_more;
    $("#tasks-first").disabled = !cursor;
    const total = page.total === null ? "" : `${page.total}${page.total_exact ? "" : "+"} matching`;
    $("#tasks-summary").textContent = page.tasks.length ? total : "No tasks match";
  } catch (error) {
    $("#tasks-summary").textContent = error.message;
  }
}

function statusKept(status) {
  const wanted = $("#filter-status").value;
  return !wanted || wanted.split(",").includes(status);
}

async function taskEventInList(message) {
  const row = document.querySelector(`#tasks tr[data-task-id="${CSS.escape(message.task_id)}"]`);
  if (row) {
    // A task that left the filtered status leaves the list (a reload would not show it).
    if (message.status && !statusKept(message.status)) { row.remove(); return; }
    row.replaceChild(statusCell(message.status), $('[data-field="status"]', row));
    if (message.worker_id) $('[data-field="worker"]', row).textContent = message.worker_id;
    if (message.progress !== undefined) $('[data-field="progress"]', row).textContent = `${message.progress}%`;
    return;
  }
  // A task not on the page: on the first page, show it at the top if the filters keep it.
  if (state.view !== "tasks" || state.cursors.length || message.source === "watch") return;
  if (!statusKept(message.status)) return;
  try {
    const detail = await api(`/api/tasks/${encodeURIComponent(message.task_id)}`);
    const task = { ...detail.task, api: detail.api };
    if (document.querySelector(`#tasks tr[data-task-id="${CSS.escape(task.task_id)}"]`)) return;
    const params = taskFilters();
    if ((params.get("type") && params.get("type") !== task.type) || (params.get("pool") && params.get("pool") !== task.pool)
      || (params.get("priority") && params.get("priority") !== task.priority) || params.get("label")) return;
    $("#tasks tbody").prepend(taskRow(task));
  } catch { /* gone or not visible: nothing to show */ }
}

// -- one task -----------------------------------------------------------------------------------

function fact(list, name, value) {
  if (value === null || value === undefined || value === "") return;
  list.append(el("dt", { text: name }), el("dd", { text: typeof value === "object" ? JSON.stringify(value) : value }));
}

function timelineItem(event) {
  const words = [time(event.at), event.status];
  if (event.progress) words.push(`${event.progress}%`);
  if (event.message) words.push(event.message);
  return el("li", { "data-seq": event.seq, text: words.join(" · ") });
}

function setTaskStatus(status, progress) {
  const node = $("#task-status");
  node.textContent = status;
  node.className = `status-${status}`;
  if (progress !== undefined) $("#task-progress").value = progress;
  const slot = $("#task-cancel-slot");
  if (TERMINAL.has(status)) slot.replaceChildren();
}

async function loadTask(taskId) {
  $("#task-id").textContent = taskId;
  $("#task-message").textContent = "";
  try {
    const detail = await api(`/api/tasks/${encodeURIComponent(taskId)}`);
    if (state.taskId !== taskId) return;
    renderTask(detail);
  } catch (error) {
    $("#task-status").textContent = "";
    $("#task-timeline").replaceChildren();
    $("#task-message").textContent = error.message;
  }
}

function renderTask(detail) {
  const task = detail.task;
  const read = detail.events.length ? detail.events[detail.events.length - 1].seq : 0;
  const newer = state.live.filter((event) => event.seq > read).sort((a, b) => a.seq - b.seq);
  const latest = newer.length ? newer[newer.length - 1] : null;
  setTaskStatus(latest ? latest.status : task.status, latest ? latest.progress : task.progress);
  const slot = $("#task-cancel-slot");
  slot.replaceChildren();
  if (detail.cancellable && !(latest && TERMINAL.has(latest.status)) && state.me.scopes.includes("tasks:write")) {
    slot.append(el("button", { id: "cancel-task", type: "button", text: "Cancel", onclick: () => cancelTask(task.task_id) }));
  }
  $("#task-timeline").replaceChildren(...detail.events.concat(newer).map(timelineItem));
  const facts = $("#task-facts");
  facts.replaceChildren();
  fact(facts, "API", detail.api);
  fact(facts, "Type", task.type);
  fact(facts, "Priority", task.priority);
  fact(facts, "Pool", task.pool);
  fact(facts, "Worker", task.executed_on);
  fact(facts, "Created", task.created_at);
  fact(facts, "Started", task.started_at);
  fact(facts, "Completed", task.completed_at);
  fact(facts, "Duration ms", task.duration_ms);
  fact(facts, "Queue time ms", task.metrics && task.metrics.queue_time_ms);
  fact(facts, "Execution time ms", task.metrics && task.metrics.execution_time_ms);
  fact(facts, "Retries", task.metrics && task.metrics.retry_count);
  fact(facts, "Labels", Object.keys(task.labels || {}).length ? task.labels : null);
  fact(facts, "TEE", task.tee_required ? `required, executed: ${task.tee_executed}` : null);
  $("#task-result").textContent = task.error ? JSON.stringify(task.error, null, 2)
    : task.result ? JSON.stringify(task.result, null, 2) : "(none yet)";
  const steps = detail.steps || [];
  $("#task-steps-box").hidden = !steps.length;
  $("#task-steps tbody").replaceChildren(...steps.map((step) => el("tr", {},
    el("td", { text: step.agent_id }), el("td", { text: step.agent_type }), el("td", { text: step.status || "" }),
    el("td", { text: step.output === undefined ? "" : JSON.stringify(step.output) }))));
  const proof = detail.proof;
  $("#task-proof-box").hidden = !proof;
  if (proof) {
    const list = $("#task-proof");
    list.replaceChildren();
    fact(list, "Verified", proof.verified ? "yes" : `no: ${proof.verification_error}`);
    fact(list, "Platform", `${proof.platform}${proof.debug ? " (debug, simulation)" : ""}`);
    fact(list, "Node", proof.node_id);
    fact(list, "MRENCLAVE", proof.mrenclave);
    fact(list, "MRSIGNER", proof.mrsigner);
    $("#task-receipt").textContent = JSON.stringify(proof.receipt, null, 2);
  }
}

async function cancelTask(taskId) {
  try {
    await api(`/api/tasks/${encodeURIComponent(taskId)}/cancel`, { method: "POST" });
  } catch (error) {
    $("#task-message").textContent = error.message;
  }
  if (state.taskId === taskId) loadTask(taskId);
}

function taskEventOnPage(message) {
  if (state.view !== "task" || message.task_id !== state.taskId) return;
  setTaskStatus(message.status, message.progress);
  const timeline = $("#task-timeline");
  if (message.source === "watch" && message.at !== undefined) state.live.push(message);
  if (message.source === "watch" && message.seq !== undefined) {
    const seqs = [...timeline.querySelectorAll("li[data-seq]")].map((li) => Number(li.dataset.seq));
    const last = seqs.length ? Math.max(...seqs) : 0;
    if (message.seq > last + 1 || (message.at === undefined && message.seq > last)) {
      loadTask(message.task_id);  // events between the page's read and the watch: read them once
      return;
    }
    if (message.at !== undefined && message.seq > last) timeline.append(timelineItem(message));
  }
  if (TERMINAL.has(message.status)) loadTask(message.task_id);  // the result or error, once
}

// -- cluster ------------------------------------------------------------------------------------

function triple(resources, name) {
  return `${fixed(resources.total[name])} / ${fixed(resources.allocated[name])} / ${fixed(resources.available[name])}`;
}

function gpuText(gpus) {
  if (!gpus || !gpus.length) return "-";
  return gpus.map((gpu) => {
    const util = gpu.utilization ?? gpu.utilization_percent ?? gpu.gpu_utilization;
    return `${gpu.name || "GPU"}#${gpu.index ?? 0}${util === undefined ? "" : ` ${util}%`}`;
  }).join(", ");
}

function adminButtons(nodeId) {
  if (!state.cluster || !state.cluster.can_admin) return "";
  const cell = el("td");
  for (const action of ["quarantine", "drain", "activate"]) {
    cell.append(el("button", { type: "button", "data-action": action, text: action,
      onclick: () => nodeAction(nodeId, action) }), " ");
  }
  return cell;
}

function workerRow(worker, gpus) {
  return el("tr", { "data-worker-id": worker.worker_id, "data-alive": String(worker.alive) },
    el("td", { text: worker.worker_id }),
    el("td", { "data-field": "state", text: worker.state }),
    el("td", { text: worker.pool || "" }),
    el("td", { text: triple(worker, "cpu") }),
    el("td", { text: triple(worker, "memory_gb") }),
    el("td", { text: gpus }),
    el("td", { text: worker.running_tasks }),
    el("td", { "data-field": "heartbeat", text: time(worker.last_heartbeat) }),
    adminButtons(worker.worker_id) || el("td"));
}

async function loadCluster() {
  try {
    const view = await api("/api/cluster");
    state.cluster = view;
    const gpusOf = Object.fromEntries(view.nodes.map((node) => [node.node_id, gpuText(node.gpus)]));
    $("#workers tbody").replaceChildren(...view.workers.map((w) => workerRow(w, gpusOf[w.worker_id] || "-")));
    $("#nodes tbody").replaceChildren(...view.nodes.map((node) => el("tr", { "data-node-id": node.node_id },
      el("td", { text: node.node_id }), el("td", { text: node.role }),
      el("td", { "data-field": "state", text: node.status }), el("td", { text: node.pool || "" }),
      el("td", { text: node.address }), el("td", { text: gpuText(node.gpus) }),
      el("td", { text: node.tasks_running, title: `tasks the store records as running here (the node reported ${node.tasks_reported} at its last heartbeat)` }),
      el("td", { text: time(node.last_heartbeat) }))));
    const pools = [...new Set(view.queues.map((q) => q.pool))];
    $("#queues tbody").replaceChildren(...pools.map((pool) => el("tr", { "data-pool": pool }, el("td", { text: pool }),
      ...["critical", "high", "normal", "low"].map((priority) => el("td", {
        text: (view.queues.find((q) => q.pool === pool && q.priority === priority) || { pending: 0 }).pending })))));
    markAsOf(Date.now() / 1000);
  } catch (error) {
    $("#as-of").textContent = error.message;
  }
}

async function nodeAction(nodeId, action) {
  try {
    await api(`/api/nodes/${encodeURIComponent(nodeId)}/${action}`, { method: "POST" });
  } catch (error) {
    alert(error.message);
  }
  loadCluster();
}

function workerEvent(message) {
  const row = document.querySelector(`#workers tr[data-worker-id="${CSS.escape(message.worker_id)}"]`);
  if (!row) { if (state.view === "cluster") loadCluster(); return; }
  row.setAttribute("data-alive", String(message.alive));
  $('[data-field="state"]', row).textContent = message.state;
  const node = document.querySelector(`#nodes tr[data-node-id="${CSS.escape(message.worker_id)}"]`);
  if (node) $('[data-field="state"]', node).textContent = message.state;
}

function markAsOf(seconds) {
  state.asOf = seconds;
  const node = $("#as-of");
  node.textContent = new Date(seconds * 1000).toLocaleTimeString();
  node.setAttribute("datetime", new Date(seconds * 1000).toISOString());
}

// -- charts (SVG, drawn here) -----------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

function drawCharts() {
  const now = Date.now() / 1000;
  state.completions = state.completions.filter((c) => now - c.at < 600).slice(-500);
  const buckets = new Array(60).fill(0);
  for (const c of state.completions) {
    const age = Math.floor(now - c.at);
    if (age >= 0 && age < 60) buckets[59 - age] += 1;
  }
  const peak = Math.max(1, ...buckets);
  const through = $("#chart-throughput");
  through.replaceChildren(svg("line", { x1: 0, y1: 90, x2: 300, y2: 90, class: "axis" }));
  buckets.forEach((count, i) => {
    const height = (count / peak) * 80;
    if (count) through.append(svg("rect", { x: i * 5, y: 90 - height, width: 4, height, class: "bar" }));
  });
  const label = svg("text", { x: 2, y: 8 });
  label.textContent = `peak ${peak}/s, now ${buckets[59]}/s`;
  through.append(label);

  const recent = state.completions.filter((c) => c.latency !== undefined).slice(-100);
  const latency = $("#chart-latency");
  latency.replaceChildren(svg("line", { x1: 0, y1: 90, x2: 300, y2: 90, class: "axis" }));
  const top = Math.max(0.001, ...recent.map((c) => c.latency));
  recent.forEach((c, i) => latency.append(svg("circle", { cx: 3 + i * 2.94, cy: 90 - (c.latency / top) * 80, r: 1.8, class: "dot" })));
  const sorted = recent.map((c) => c.latency).sort((a, b) => a - b);
  const pick = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(3) : "-");
  const text = svg("text", { x: 2, y: 8 });
  text.textContent = `max ${top.toFixed(3)} s`;
  latency.append(text);
  $("#latency-summary").textContent = sorted.length ? `p50 ${pick(0.5)} s · p95 ${pick(0.95)} s` : "(no completions yet)";
}

// -- models and capacity -------------------------------------------------------------------------

function places(locations) {
  return (locations || []).map((l) => `${l.device} (${l.status})`).join(", ") || "-";
}

async function loadModels() {
  try {
    const view = await api("/api/models");
    $("#models tbody").replaceChildren(...view.models.map((m) => el("tr", { "data-model": m.model_name },
      el("td", { text: m.model_name }), el("td", { text: m.model_type }), el("td", { text: bytes(m.model_size) }),
      el("td", { text: m.status }), el("td", { text: places(m.locations) }))));
    $("#chunks tbody").replaceChildren(...view.chunks.map((c) => el("tr", { "data-chunk": c.chunk_id },
      el("td", { text: c.chunk_id }), el("td", { text: c.chunk_type }), el("td", { text: bytes(c.size) }),
      el("td", { text: places(c.locations) }), el("td", { text: c.references }))));
    $("#moves tbody").replaceChildren(...view.moves.map((m) => el("tr", {},
      el("td", { text: m.name }), el("td", { text: m.device }), el("td", { text: m.status }),
      el("td", { text: m.bytes_per_second ? `${bytes(m.bytes_per_second)}/s` : "-" }))));
    $("#services tbody").replaceChildren(...view.services.map((s) => el("tr", { "data-service": s.service_id },
      el("td", { text: s.service_id }), el("td", { text: s.model_name }), el("td", { text: s.node }),
      el("td", { text: s.device }), el("td", { text: s.status }), el("td", { text: s.url || "" }))));
  } catch (error) {
    $("#models tbody").replaceChildren(el("tr", {}, el("td", { colspan: 5, className: "error", text: error.message })));
  }
}

function fidelityTable(rows) {
  return el("table", { className: "fidelity" },
    el("thead", {}, el("tr", {}, ...["level", "of capacity", "figure", "measured", "predicted", "error"].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows.map((row) => el("tr", {},
      el("td", { text: row.level }), el("td", { text: row.share_of_capacity ? `${Math.round(row.share_of_capacity * 100)}%` : "-" }),
      el("td", { text: row.figure }), el("td", { text: fixed(row.measured) }), el("td", { text: fixed(row.predicted) }),
      el("td", { text: typeof row.error === "number" ? `${(row.error * 100).toFixed(1)}%` : "-" })))));
}

async function loadCapacity() {
  const box = $("#capacity");
  try {
    const view = await api("/api/capacity");
    if (!view.runs.length) {
      box.replaceChildren(el("p", { className: "muted", text: `No runs yet (nothing under ${view.root}/ from grey simulate --out, grey plan --out, grey loadtest or grey calibrate).` }));
      return;
    }
    box.replaceChildren(...view.runs.map((run) => el("div", { className: "run", "data-run": run.run },
      el("h3", { text: `${run.run} · ${new Date(run.modified * 1000).toLocaleString()}` }),
      run.fidelity ? fidelityTable(run.fidelity) : null,
      ...run.images.map((path) => el("img", { src: `${BASE}/api/capacity/files/${path.split("/").map(encodeURIComponent).join("/")}`, alt: path, loading: "lazy" })),
      run.json.length ? el("p", {}, "Data: ", ...run.json.map((path) => el("a", {
        href: `${BASE}/api/capacity/files/${path.split("/").map(encodeURIComponent).join("/")}`, text: path }, " "))) : null)));
  } catch (error) {
    box.replaceChildren(el("p", { className: "error", text: error.message }));
  }
}

// -- live ---------------------------------------------------------------------------------------

function watch(taskId) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN && taskId !== state.taskId) {
    state.socket.send(JSON.stringify({ watch: taskId }));
  }
}

function openSocket() {
  closeSocket();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${BASE}/live`);  // the cookie authenticates
  state.socket = socket;
  socket.addEventListener("open", () => {
    state.retry = 0;
    $("#live-state").textContent = "live";
    if (state.taskId) socket.send(JSON.stringify({ watch: state.taskId }));
  });
  socket.addEventListener("message", (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    onMessage(message);
  });
  socket.addEventListener("close", () => {
    if (state.socket !== socket) return;
    state.socket = null;
    $("#live-state").textContent = "reconnecting";
    if (!state.me) return;
    state.retry = Math.min(state.retry + 1, 6);
    setTimeout(async () => {
      if (!state.me || state.socket) return;
      let me = null;
      try { me = await api("/session"); } catch { return; }
      if (!me.signed_in) { showSignIn("Your session ended; sign in again"); return; }  // e.g. a revoked key
      openSocket();
      route();  // what changed while the socket was down
    }, 500 * 2 ** state.retry);
  });
}

function closeSocket() {
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close();
  $("#live-state").textContent = "";
}

function onMessage(message) {
  if (message.type === "task") {
    if (message.source !== "watch" && TERMINAL.has(message.status)) {
      const latency = message.created_at && message.completed_at ? message.completed_at - message.created_at : undefined;
      state.completions.push({ at: message.completed_at || message.at, latency });
    }
    taskEventInList(message);
    taskEventOnPage(message);
  } else if (message.type === "worker") {
    workerEvent(message);
  } else if (message.type === "resync") {
    route();
  }
  if (message.type !== "hello") markAsOf(message.at || Date.now() / 1000);
}

// -- start --------------------------------------------------------------------------------------

async function start() {
  $("#sign-in-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  $("#task-filters").addEventListener("submit", (event) => { event.preventDefault(); state.cursors = []; loadTasks(null); });
  $("#filter-status").addEventListener("change", () => { state.cursors = []; loadTasks(null); });
  $("#tasks-next").addEventListener("click", () => { if (state.nextCursor) { state.cursors.push(state.nextCursor); loadTasks(state.nextCursor); } });
  $("#tasks-first").addEventListener("click", () => { state.cursors = []; loadTasks(null); });
  window.addEventListener("hashchange", route);
  setInterval(() => { if (state.view === "cluster") drawCharts(); }, 1000);  // slides the window; reads nothing
  try {
    const me = await api("/session");
    if (me.signed_in) signedIn(me); else showSignIn();
  } catch {
    showSignIn();
  }
}

start();
