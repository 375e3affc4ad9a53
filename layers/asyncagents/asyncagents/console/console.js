// The asyncagents operator console: one page, this origin's script only, no dependencies.
// Everything a request, a model or a user wrote is put on the page as text (textContent), never as HTML;
// links are made only from http(s) URLs. Keys live in this tab's session storage and go to this API only.

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const STATUSES = ["pending", "processing", "awaiting_clarification", "completed", "failed", "cancelled"];
const MAX_FOLLOWERS = 4; // long polls at once on the list (browsers allow six connections per host)
const FOLLOW_WAIT_SECONDS = 20;

// -- session ----------------------------------------------------------------------------------------------

const FIELDS = ["client_key", "user_id", "admin_key", "token"];
const session = {
  get(name) { return sessionStorage.getItem(`asyncagents.${name}`) || ""; },
  save(values) {
    for (const name of FIELDS) {
      const value = (values[name] || "").trim();
      if (value) sessionStorage.setItem(`asyncagents.${name}`, value);
      else sessionStorage.removeItem(`asyncagents.${name}`);
    }
  },
  clear() { for (const name of FIELDS) sessionStorage.removeItem(`asyncagents.${name}`); },
  client() { return Boolean(this.get("client_key") || this.get("token")); },
  admin() { return Boolean(this.get("admin_key")); },
  user() { return this.get("user_id"); }, // empty: the API's "default" user, or the one a bound key acts for
};

// -- the page's building blocks ------------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "value") node.value = value;
    else if (name === "href") throw new Error("use link() for links");
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A link to a place in the console, or to an http(s) URL (anything else, javascript: included, stays text).
function link(target, text, { external = false } = {}) {
  if (!external) {
    const node = el("a", {}, text);
    node.href = target;
    return node;
  }
  let url;
  try { url = new URL(target, location.href); } catch { return el("span", {}, text); }
  if (url.protocol !== "https:" && url.protocol !== "http:") return el("span", {}, text);
  const node = el("a", { rel: "noopener noreferrer", target: "_blank" }, text);
  node.href = url.href;
  return node;
}

function statusBadge(status) {
  return el("span", { class: `status ${STATUSES.includes(status) ? status : ""}`, "data-status": status }, status);
}

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

let noticeTimer;
function notify(text, { error = false } = {}) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.className = error ? "notice error" : "notice";
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

// -- the API -------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

async function api(method, path, { body, admin = false, params, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (admin) {
    headers["X-Muxi-Admin-Key"] = session.get("admin_key");
  } else if (session.get("token")) {
    headers.Authorization = `Bearer ${session.get("token")}`;
  } else {
    headers["X-Muxi-Client-Key"] = session.get("client_key");
    if (session.user()) headers["X-Muxi-User-Id"] = session.user();
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const query = params ? `?${new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null))}` : "";
  const response = await fetch(path + query, {
    method, headers, signal, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const message = (data && data.message) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, data);
  }
  return data;
}

const pause = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
});

// Follow a request's events (the JSON long poll of GET /v1/requests/{id}/events) until it ends or the view goes.
async function follow(requestId, onPage, signal, after = 0) {
  let failures = 0;
  while (!signal.aborted) {
    try {
      const page = await api("GET", `/v1/requests/${encodeURIComponent(requestId)}/events`, {
        params: { after, wait: FOLLOW_WAIT_SECONDS }, signal,
      });
      failures = 0;
      after = page.last_event_id;
      onPage(page);
      if (page.finished) return;
    } catch (error) {
      if (signal.aborted || (error instanceof ApiError && error.status === 404)) return;
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        notify(`${error.status}: ${error.message} (sign in again)`, { error: true });
        return;
      }
      failures += 1;
      await pause(Math.min(10_000, 1000 * 2 ** failures), signal);
    }
  }
}

// -- views ---------------------------------------------------------------------------------------------------

let current = new AbortController();
let returnTo = ""; // where the user was going when the console asked them to sign in

function mount(...children) {
  const view = document.getElementById("view");
  view.replaceChildren(...children);
}

function needs(kind) {
  const ok = kind === "admin" ? session.admin() : session.client();
  if (ok) return null;
  const what = kind === "admin" ? "an admin key" : "a client key (or a token)";
  return el("p", { class: "muted" }, `This view needs ${what}. `, link("#/signin", "Sign in"));
}

function failed(error) {
  return el("p", { class: "error", role: "alert" }, error instanceof ApiError ? `${error.status}: ${error.message}` : String(error));
}

function signIn() {
  const inputs = {
    client_key: el("input", { type: "password", id: "client_key", autocomplete: "off", value: session.get("client_key") }),
    user_id: el("input", { type: "text", id: "user_id", value: session.get("user_id"), placeholder: "default (or the user a bound key acts for)" }),
    admin_key: el("input", { type: "password", id: "admin_key", autocomplete: "off", value: session.get("admin_key") }),
    token: el("input", { type: "password", id: "token", autocomplete: "off", value: session.get("token") }),
  };
  const form = el("form", { class: "panel", id: "signin" },
    el("label", { for: "client_key" }, "Client key (X-Muxi-Client-Key)"), inputs.client_key,
    el("label", { for: "user_id" }, "User id (X-Muxi-User-Id)"), inputs.user_id,
    el("label", { for: "admin_key" }, "Admin key (X-Muxi-Admin-Key): dead letters, schedules, monitoring, redrive"), inputs.admin_key,
    el("label", { for: "token" }, "Or an end user's JWT (when the stack verifies tokens)"), inputs.token,
    el("div", {}, el("button", { type: "submit" }, "Sign in"),
      el("button", { type: "button", class: "secondary", onclick: () => { session.clear(); renderWho(); signIn(); } }, "Sign out")),
    el("p", { class: "muted" }, "Keys stay in this tab's session storage and are sent to this API only."),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    session.save(Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, input.value])));
    renderWho();
    const next = returnTo || (session.client() ? "#/requests" : "#/monitoring");
    returnTo = "";
    if (location.hash === next) route(); else location.hash = next;
  });
  mount(el("h1", {}, "Sign in"), form);
}

async function requestsView(signal) {
  const missing = needs("client");
  if (missing) return mount(el("h1", {}, "Requests"), missing);
  const statusFilter = el("select", { id: "status-filter", "aria-label": "Status" },
    el("option", { value: "" }, "every status"), STATUSES.map((s) => el("option", { value: s }, s)));
  statusFilter.value = new URLSearchParams(location.hash.split("?")[1] || "").get("status") || "";
  statusFilter.addEventListener("change", () => {
    location.hash = statusFilter.value ? `#/requests?status=${statusFilter.value}` : "#/requests";
  });
  const message = el("textarea", { id: "new-message", required: true, placeholder: "What should the agent do?" });
  const runAsync = el("input", { type: "checkbox", id: "new-async", checked: true });
  const submit = el("form", { class: "panel", id: "new-request" },
    el("label", { for: "new-message" }, "New request"), message,
    el("label", { for: "new-async" }, runAsync, " in the background (async)"),
    el("button", { type: "submit" }, "Submit"));
  const rows = el("tbody", { id: "request-rows" });
  const more = el("div");
  const table = el("table", { id: "requests" },
    el("thead", {}, el("tr", {}, ["Request", "Status", "Progress", "Message", "Created"].map((h) => el("th", {}, h)))), rows);
  mount(el("h1", {}, "Requests"), submit, el("div", {}, statusFilter), table, more);

  // Each unfinished row's bar follows its request's events; a reload makes new rows, so a follower finds its
  // request's current row at each page. Slots freed by requests that ended go to rows still unfollowed.
  const followed = new Set();
  const rowOf = (id) => [...rows.children].find((tr) => tr.dataset.requestId === id);
  function followMore() {
    for (const tr of rows.children) {
      const id = tr.dataset.requestId;
      if (followed.size >= MAX_FOLLOWERS) return;
      if (!id || followed.has(id) || TERMINAL.has(tr.dataset.status)) continue;
      followed.add(id);
      follow(id, (page) => {
        const current = rowOf(id);
        if (!current) return;
        const last = page.events[page.events.length - 1];
        if (last) {
          current.querySelector("progress").value = last.progress;
          current.querySelector(".cell-percent").textContent = `${last.progress} %`;
          current.querySelector(".cell-message").textContent = last.message;
        }
        current.dataset.status = page.status;
        current.querySelector(".cell-status").replaceChildren(statusBadge(page.status));
      }, signal).finally(() => { followed.delete(id); if (!signal.aborted) followMore(); });
    }
  }
  function row(request) {
    const bar = el("progress", { max: 100, value: request.progress ?? 0, "aria-label": `progress of ${request.request_id}` });
    return el("tr", { "data-request-id": request.request_id, "data-status": request.status },
      el("td", {}, link(`#/requests/${encodeURIComponent(request.request_id)}`, request.request_id)),
      el("td", { class: "cell-status" }, statusBadge(request.status)),
      el("td", {}, bar, " ", el("span", { class: "cell-percent" }, `${request.progress ?? 0} %`)),
      el("td", { class: "cell-message" }, request.message || ""),
      el("td", { class: "muted" }, when(request.created_at)));
  }

  async function load(cursor) {
    try {
      const page = await api("GET", "/v1/requests", { params: { limit: 20, status: statusFilter.value, cursor }, signal });
      if (!cursor) rows.replaceChildren();
      rows.append(...page.requests.map(row));
      followMore();
      more.replaceChildren(page.next_cursor ? el("button", { class: "secondary", onclick: () => load(page.next_cursor) }, "More") : "");
      if (!page.requests.length && !cursor) rows.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No requests yet.")));
    } catch (error) {
      if (!signal.aborted) more.replaceChildren(failed(error));
    }
  }

  submit.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const accepted = await api("POST", "/v1/chat", { body: { message: message.value, async: runAsync.checked } });
      notify(`Accepted: ${accepted.request_id}`);
      message.value = "";
      await load();
    } catch (error) {
      notify(error.message, { error: true });
    }
  });
  await load();
}

async function requestView(requestId, signal) {
  const missing = needs("client");
  if (missing) return mount(el("h1", {}, "Request"), missing);
  const parts = {
    summary: el("section", { id: "summary" }), actions: el("div", { id: "actions" }), question: el("section", { id: "question" }),
    asked: el("section", { id: "questions" }), steps: el("section", { id: "steps" }), outcome: el("section", { id: "outcome" }), usage: el("section", { id: "usage" }),
    webhook: el("section", { id: "webhook" }), timeline: el("section", { id: "timeline" }),
  };
  mount(el("h1", {}, "Request ", el("code", {}, requestId)), ...Object.values(parts));
  const path = `/v1/requests/${encodeURIComponent(requestId)}`;
  const timeline = el("tbody");
  parts.timeline.append(el("h2", {}, "Timeline"),
    el("table", { id: "events" }, el("thead", {}, el("tr", {}, ["#", "At", "Event", "Status", "Progress", "Message"].map((h) => el("th", {}, h)))), timeline));
  let shownQuestion = null;
  let following = null;

  function render(request) {
    parts.summary.replaceChildren(facts([
      ["Status", statusBadge(request.status)],
      ["Progress", el("span", {}, el("progress", { max: 100, value: request.progress, id: "detail-progress" }), ` ${request.progress} %`)],
      ["Now", request.message], ["Current step", request.current_step],
      ["Steps", `${request.completed_steps} of ${request.total_steps}`],
      ["Created", when(request.created_at)], ["Ended", when(request.completed_at)],
      ["Duration", request.duration_ms != null ? `${(request.duration_ms / 1000).toFixed(1)} s` : ""],
      ["Mode", `${request.processing_mode}${request.mode_reason ? ` (${request.mode_reason})` : ""}`],
      ["Key", request.key_id], ["Trigger", request.trigger], ["Schedule job", request.schedule_job_id],
    ]));
    const buttons = [];
    if (!TERMINAL.has(request.status)) {
      buttons.push(el("button", { class: "danger", id: "cancel", onclick: async () => {
        if (!confirm(`Cancel ${requestId}? Its partial work is discarded.`)) return;
        try { await api("DELETE", path); notify("Cancelled"); await refresh(); } catch (error) { notify(error.message, { error: true }); }
      } }, "Cancel"));
    }
    if (request.status === "failed" && session.admin()) {
      buttons.push(el("button", { id: "redrive", onclick: async () => {
        try {
          await api("POST", "/v1/admin/requests/redrive", { admin: true, body: { key_id: request.key_id, user_id: session.user(), request_id: requestId } });
          notify("Redriven: it resumes from its checkpoints");
          await refresh();
          startFollowing();
        } catch (error) { notify(error.message, { error: true }); }
      } }, "Redrive"));
    }
    parts.actions.replaceChildren(...buttons);
    renderQuestion(request);
    parts.steps.replaceChildren(...(request.steps ? [el("h2", {}, "Steps"), el("table", { id: "step-table" },
      el("thead", {}, el("tr", {}, ["#", "Step", "State", "Attempts"].map((h) => el("th", {}, h)))),
      el("tbody", {}, request.steps.map((s) => el("tr", {}, el("td", {}, s.index + 1), el("td", {}, s.title),
        el("td", {}, el("span", { class: `state ${s.state}` }, s.state)), el("td", {}, s.attempts)))))] : []));
    renderOutcome(request);
    const asked = request.clarifications || [];
    parts.asked.replaceChildren(...(asked.length ? [el("h2", {}, "Questions"), el("table", {},
      el("thead", {}, el("tr", {}, ["Asked", "Question", "Answer", "Outcome"].map((h) => el("th", {}, h)))),
      el("tbody", {}, asked.map((q) => el("tr", {}, el("td", { class: "muted" }, when(q.asked_at)), el("td", {}, q.question),
        el("td", {}, q.answer ?? ""), el("td", {}, q.outcome ?? "")))))] : []));
    const usage = request.usage || {};
    parts.usage.replaceChildren(...(request.model_calls ? [el("h2", {}, "Usage and cost"), facts([
      ["Model calls", request.model_calls], ["Tokens", request.tokens_used],
      ["Input / output", request.usage ? `${usage.input_tokens} / ${usage.output_tokens}` : ""],
      ["Estimated cost", request.estimated_cost_usd != null ? `$${request.estimated_cost_usd.toFixed(4)}` : "no price for the model (spend.prices)"],
    ])] : []));
    const hook = request.webhook;
    parts.webhook.replaceChildren(...(hook ? [el("h2", {}, "Webhook"), facts([
      ["Delivery", hook.status], ["Event", hook.event], ["Attempts", hook.attempts],
      ["Last error", hook.last_error ? el("span", { class: "error" }, hook.last_error) : "none"], ["Delivery id", hook.delivery_id],
    ])] : []));
  }

  function renderQuestion(request) {
    const asked = request.clarification;
    const id = asked ? asked.clarification_request_id : null;
    if (id === shownQuestion) return;
    shownQuestion = id;
    if (!asked) return parts.question.replaceChildren();
    const answer = el("textarea", { id: "answer", required: true });
    const form = el("form", { class: "panel", id: "answer-form" },
      el("h2", {}, "The agent asks"), el("p", { id: "question-text" }, asked.question),
      el("p", { class: "muted" }, asked.step ? `About: ${asked.step}` : ""),
      el("label", { for: "answer" }, "Your answer"), answer, el("div", {}, el("button", { type: "submit" }, "Answer")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("POST", `${path}/clarification`, { body: { answer: answer.value, clarification_request_id: id } });
        notify("Answer sent; the request resumes");
        await refresh();
      } catch (error) { notify(error.message, { error: true }); }
    });
    parts.question.replaceChildren(form);
  }

  function renderOutcome(request) {
    const shown = [];
    if (request.result) {
      shown.push(el("h2", {}, "Result"), el("pre", { class: "result", id: "result-text" }, request.result.text ?? ""));
      const files = request.result.artifacts || [];
      if (files.length) {
        shown.push(el("h2", {}, "Artifacts"), el("ul", {}, files.map((f) => el("li", {},
          f.url ? link(f.url, f.name || "file", { external: true }) : (f.name || "file"), ` ${f.content_type || ""} ${f.size ?? ""}`))));
      }
    }
    if (request.error) {
      shown.push(el("h2", {}, "Error"), facts([["Type", request.error.type], ["Message", el("span", { class: "error", id: "error-text" }, request.error.message)],
        ["Retryable", String(request.error.retryable)]]));
    }
    if (request.status === "cancelled") shown.push(el("p", { class: "muted" }, "Cancelled: no partial result is kept."));
    parts.outcome.replaceChildren(...shown);
  }

  let asked = 0; // refreshes overlap (every events page asks): only the newest answer is rendered
  async function refresh() {
    const mine = ++asked;
    try {
      const request = await api("GET", path, { signal });
      if (mine === asked) render(request);
    } catch (error) { if (!signal.aborted && mine === asked) parts.summary.replaceChildren(failed(error)); }
  }

  function startFollowing() {
    if (following) return;
    const after = Number(timeline.lastElementChild?.dataset.eventId || 0);
    following = follow(requestId, (page) => {
      for (const e of page.events) {
        timeline.append(el("tr", { "data-event-id": e.id }, el("td", {}, e.id), el("td", { class: "muted" }, when(e.at)),
          el("td", {}, e.type), el("td", {}, e.status), el("td", {}, `${e.progress} %`), el("td", {}, e.message)));
      }
      if (page.events.length) refresh();
    }, signal, after).finally(() => { following = null; });
  }

  await refresh();
  startFollowing();
}

async function deadLettersView(signal) {
  const missing = needs("admin");
  if (missing) return mount(el("h1", {}, "Webhook dead letters"), missing);
  const body = el("div", { id: "dead-letters" });
  const redrive = el("button", { id: "redrive-dead-letters", onclick: async () => {
    if (!confirm("Send every dead letter back to the webhook queue?")) return;
    try {
      const done = await api("POST", "/v1/admin/webhooks/dead-letters/redrive", { admin: true });
      notify(`Sent back to the webhook queue (${done.strategy || "redrive"})`);
      await load();
    } catch (error) { notify(error.message, { error: true }); }
  } }, "Redrive all");
  mount(el("h1", {}, "Webhook dead letters"),
    el("p", { class: "muted" }, "Events whose delivery failed for good. A redrive sends them back to the queue, signed again."),
    redrive, el("button", { class: "secondary", onclick: () => load() }, "Refresh"), body);
  async function load() {
    try {
      const found = await api("GET", "/v1/admin/webhooks/dead-letters", { admin: true, signal });
      body.replaceChildren(el("p", { id: "dead-letter-count" }, `${found.count} dead-lettered`),
        el("table", {}, el("thead", {}, el("tr", {}, ["Delivery", "Request", "Status", "Channel", "URL", "Reason"].map((h) => el("th", {}, h)))),
          el("tbody", {}, found.dead_letters.map((d) => el("tr", { class: "dead-letter" }, el("td", {}, d.delivery_id || d.message_id),
            el("td", {}, d.snapshot?.request_id || ""), el("td", {}, d.status || ""), el("td", {}, d.channel || "webhook"),
            el("td", {}, d.webhook_url || ""), el("td", { class: "error" }, d.reason || "")))))); 
    } catch (error) { if (!signal.aborted) body.replaceChildren(failed(error)); }
  }
  await load();
}

async function triggersView(signal) {
  const missing = needs("client");
  if (missing) return mount(el("h1", {}, "Triggers"), missing);
  const list = el("tbody");
  mount(el("h1", {}, "Triggers"), el("p", { class: "muted" }, "Defined as triggers/<name>.md beside formation.yaml; fired with POST /v1/triggers/<name>."),
    el("table", { id: "triggers" }, el("thead", {}, el("tr", {}, ["Name", "Description", "Verified by"].map((h) => el("th", {}, h)))), list));
  try {
    const found = await api("GET", "/v1/triggers", { signal });
    if (!found.triggers.length) list.append(el("tr", {}, el("td", { colspan: 3, class: "muted" }, "No triggers in this formation.")));
    for (const name of found.triggers) {
      const detail = await api("GET", `/v1/triggers/${encodeURIComponent(name)}`, { signal });
      list.append(el("tr", {}, el("td", {}, name), el("td", {}, detail.description || ""), el("td", {}, detail.authentication)));
    }
  } catch (error) { if (!signal.aborted) list.append(el("tr", {}, el("td", { colspan: 3 }, failed(error)))); }
}

async function schedulesView(signal) {
  const missing = needs("admin");
  if (missing) return mount(el("h1", {}, "Scheduled jobs"), missing);
  const fields = {
    schedule: el("input", { type: "text", id: "job-schedule", required: true, placeholder: "0 9 * * *, rate(1 hour), or an ISO time" }),
    timezone: el("input", { type: "text", id: "job-timezone", value: "UTC" }),
    message: el("textarea", { id: "job-message", required: true }),
    title: el("input", { type: "text", id: "job-title" }),
  };
  const type = el("select", { id: "job-type" }, el("option", { value: "recurring" }, "recurring"), el("option", { value: "one_time" }, "one time"));
  const create = el("form", { class: "panel", id: "new-job" },
    el("label", { for: "job-type" }, "Type"), type, el("label", { for: "job-schedule" }, "Schedule"), fields.schedule,
    el("label", { for: "job-timezone" }, "Time zone"), fields.timezone, el("label", { for: "job-title" }, "Title"), fields.title,
    el("label", { for: "job-message" }, "Message"), fields.message, el("div", {}, el("button", { type: "submit" }, "Create")));
  const rows = el("tbody", { id: "job-rows" });
  mount(el("h1", {}, "Scheduled jobs"), create,
    el("table", { id: "jobs" }, el("thead", {}, el("tr", {}, ["Job", "Title", "Schedule", "Next run", "State", ""].map((h) => el("th", {}, h)))), rows));
  const act = (label, cls, run) => el("button", { class: cls, onclick: async () => {
    try { await run(); await load(); } catch (error) { notify(error.message, { error: true }); }
  } }, label);
  async function load() {
    try {
      const found = await api("GET", "/v1/scheduler/jobs", { admin: true, signal });
      rows.replaceChildren(...found.jobs.map((job) => {
        const path = `/v1/scheduler/jobs/${encodeURIComponent(job.id)}`;
        const controls = job.source === "formation" ? [el("span", { class: "muted" }, "in formation.yaml")] : [
          job.enabled ? act("Pause", "secondary", () => api("POST", `${path}/pause`, { admin: true }))
            : act("Resume", "secondary", () => api("POST", `${path}/resume`, { admin: true })),
          act("Delete", "danger", () => (confirm(`Delete ${job.id}?`) ? api("DELETE", path, { admin: true }) : null)),
        ];
        return el("tr", { "data-job-id": job.id }, el("td", {}, job.id), el("td", {}, job.title || job.message),
          el("td", {}, `${job.schedule} (${job.timezone})`), el("td", {}, when(job.next_run)),
          el("td", { class: "job-state" }, job.enabled ? "active" : "paused"), el("td", {}, controls));
      }));
      if (!found.jobs.length) rows.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No scheduled jobs.")));
    } catch (error) { if (!signal.aborted) rows.replaceChildren(el("tr", {}, el("td", { colspan: 6 }, failed(error)))); }
  }
  create.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { type: type.value, message: fields.message.value, timezone: fields.timezone.value || "UTC", title: fields.title.value,
      user_id: session.user(), ...(type.value === "one_time" ? { run_at: fields.schedule.value } : { schedule: fields.schedule.value }) };
    try { const job = await api("POST", "/v1/scheduler/jobs", { admin: true, body }); notify(`Created ${job.id}`); await load(); }
    catch (error) { notify(error.message, { error: true }); }
  });
  await load();
}

async function monitoringView(signal) {
  const missing = needs("admin");
  if (missing) return mount(el("h1", {}, "Monitoring"), missing);
  const windowChoice = el("select", { id: "metrics-window", "aria-label": "Window" }, ["15m", "1h", "24h", "7d"].map((w) => el("option", { value: w }, w)));
  windowChoice.value = "1h";
  const figures = el("div", { class: "figures", id: "figures" });
  const spend = el("section", { id: "spend" });
  mount(el("h1", {}, "Monitoring"), el("div", {}, "Window ", windowChoice), figures, spend);
  const percent = (value) => (value == null ? "–" : `${(value * 100).toFixed(1)} %`);
  const figure = (name, value, detail) => el("div", { class: "figure", "data-figure": name }, el("div", { class: "muted" }, name), el("div", { class: "value" }, value), el("div", { class: "muted" }, detail));
  async function load() {
    try {
      const m = await api("GET", "/v1/admin/metrics", { admin: true, params: { window: windowChoice.value }, signal });
      const r = m.requests, w = m.webhooks, q = m.queue_depth;
      figures.replaceChildren(
        figure("Average duration", m.average_duration_seconds == null ? "–" : `${m.average_duration_seconds.toFixed(1)} s`, `${r.completed} completed`),
        figure("Success rate", percent(m.success_rate), `${r.completed} completed, ${r.failed} failed, ${r.timed_out} timed out`),
        figure("Webhook delivery success", percent(m.webhook_delivery_success_rate), `${w.delivered} delivered, ${w.dead} dead-lettered`),
        figure("Queue depth", String(q.unfinished_requests), `${q.webhook_backlog} webhooks waiting, ${q.webhook_dead_letters} dead-lettered`));
    } catch (error) { if (!signal.aborted) figures.replaceChildren(failed(error)); }
    try {
      const caps = await api("GET", "/v1/admin/spend", { admin: true, signal });
      spend.replaceChildren(...(caps.capped ? [el("h2", {}, "Spend caps"), el("table", {}, el("thead", {}, el("tr", {}, ["Scope", "Period", "Measure", "Spent", "Cap", "Left"].map((h) => el("th", {}, h)))),
        el("tbody", {}, caps.counters.flatMap((c) => Object.entries(c.caps).map(([measure, cap]) => el("tr", {}, el("td", {}, c.scope), el("td", {}, c.period_id),
          el("td", {}, measure), el("td", {}, c.spent[measure]), el("td", {}, cap), el("td", {}, c.remaining[measure]))))))] : []));
    } catch (error) { if (!signal.aborted) spend.replaceChildren(failed(error)); }
  }
  windowChoice.addEventListener("change", load);
  await load();
}

// -- routing -------------------------------------------------------------------------------------------------

function decoded(part) {
  try { return decodeURIComponent(part); } catch { return part; }
}

function renderWho() {
  const who = [];
  if (session.get("token")) who.push("token");
  else if (session.get("client_key")) who.push(`user ${session.user()}`);
  if (session.admin()) who.push("admin");
  const box = document.getElementById("who");
  box.replaceChildren(who.length ? `${who.join(" + ")} · ` : "", link("#/signin", who.length ? "keys" : "Sign in"));
}

function route() {
  current.abort();
  current = new AbortController();
  const signal = current.signal;
  const [path] = (location.hash.slice(1) || "/requests").split("?");
  const [, name, id] = path.split("/");
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === name);
  if (!session.client() && !session.admin() && name !== "signin") {
    returnTo = location.hash;
    return signIn();
  }
  const views = {
    signin: () => signIn(),
    requests: () => (id ? requestView(decoded(id), signal) : requestsView(signal)),
    "dead-letters": () => deadLettersView(signal),
    triggers: () => triggersView(signal),
    schedules: () => schedulesView(signal),
    monitoring: () => monitoringView(signal),
  };
  (views[name] || views.requests)();
}

window.addEventListener("hashchange", route);
renderWho();
route();
