// The wallboard: draws each JSON snapshot pushed on /wallboard/events.
// Every text taken from a snapshot goes in with textContent, never innerHTML.
"use strict";

const LABELS = {
  en: {
    title: "Switchboard wallboard", queues: "Queues", department: "Department",
    waiting: "Waiting", longest_wait: "Longest wait", estimated_wait: "Estimated wait",
    service_level: "Service level today", agents: "Agents", agent: "Agent", state: "State",
    for: "For", calls: "Calls now", number: "Number", scenario: "Scenario", node: "Node",
    call_state: "State", duration: "Duration", no_calls: "No calls now.",
    funnel: "Today's funnel", entered: "entered", abandoned: "abandoned here",
    no_funnel: "No calls today yet.", connecting: "connecting…", live: "live",
    lost: "connection lost, retrying…",
    source_database: "from the database", source_process: "calls of this process",
    source_none: "no records kept",
    available: "available", ringing: "ringing", talking: "talking", wrapup: "wrap-up",
    paused: "paused", logged_out: "logged out",
    call_scenario: "in scenario", call_queue: "in queue", call_talking: "talking",
  },
  ru: {
    title: "Табло Switchboard", queues: "Очереди", department: "Отдел",
    waiting: "Ждут", longest_wait: "Дольше всех", estimated_wait: "Ожидаемое ожидание",
    service_level: "Уровень сервиса сегодня", agents: "Операторы", agent: "Оператор",
    state: "Состояние", for: "Сколько", calls: "Звонки сейчас", number: "Номер",
    scenario: "Сценарий", node: "Узел", call_state: "Состояние", duration: "Длительность",
    no_calls: "Звонков нет.", funnel: "Воронка за сегодня", entered: "вошли",
    abandoned: "положили трубку здесь", no_funnel: "Сегодня звонков ещё не было.",
    connecting: "подключение…", live: "в эфире", lost: "связь потеряна, переподключение…",
    source_database: "по базе данных", source_process: "звонки этого процесса",
    source_none: "записи не хранятся",
    available: "свободен", ringing: "звонит", talking: "разговаривает", wrapup: "постобработка",
    paused: "на паузе", logged_out: "не в сети",
    call_scenario: "в сценарии", call_queue: "в очереди", call_talking: "разговор",
  },
};

const SVG = "http://www.w3.org/2000/svg";
const asked = new URLSearchParams(window.location.search).get("lang");
let lang = asked in LABELS ? asked : null;  // null: the company's, from the first snapshot

function t(key) { return LABELS[lang || "en"][key] ?? key; }

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), rest = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(rest)}` : `${m}:${two(rest)}`;
}

function number(value) { return new Intl.NumberFormat(lang || "en").format(value); }

function percent(share) {
  if (share === null || share === undefined) return "—";
  return new Intl.NumberFormat(lang || "en", { style: "percent", maximumFractionDigits: 0 })
    .format(share);
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fill(tbodySelector, items, draw) {
  const body = document.querySelector(tbodySelector);
  const rows = items.map((item) => {
    const row = document.createElement("tr");
    draw(row, item);
    return row;
  });
  body.replaceChildren(...rows);
}

function applyLabels() {
  document.documentElement.lang = lang || "en";
  document.title = t("title");
  for (const element of document.querySelectorAll("[data-label]")) {
    element.textContent = t(element.dataset.label);
  }
  for (const code of Object.keys(LABELS)) {
    document.getElementById(`lang-${code}`).setAttribute("aria-current", String(code === lang));
  }
}

function setStatus(state) {
  const status = document.getElementById("status");
  status.dataset.state = state;
  status.textContent = t(state);
}

function drawQueues(queues) {
  fill("#queues tbody", queues, (row, q) => {
    row.dataset.department = q.department;
    cell(row, q.name);
    cell(row, number(q.waiting), "num big waiting");
    cell(row, duration(q.longest_wait), "num longest");
    cell(row, duration(q.estimated_wait), "num estimate");
    const level = cell(row, percent(q.service_level), "num service-level");
    level.title = `${number(q.answered_within_today)} / ${number(q.offered_today)}`;
  });
}

function drawAgents(agents) {
  fill("#agents tbody", agents, (row, a) => {
    row.dataset.agent = a.agent;
    cell(row, a.name);
    const td = cell(row, "");
    const badge = document.createElement("span");
    badge.className = `state state-${a.state}`;
    badge.dataset.state = a.state;
    badge.textContent = t(a.state);
    td.appendChild(badge);
    if (a.reason) {
      const reason = document.createElement("span");
      reason.className = "reason";
      reason.textContent = a.reason;
      td.appendChild(reason);
    }
    cell(row, duration(a.seconds), "num");
  });
}

function drawCalls(calls) {
  fill("#calls tbody", calls, (row, c) => {
    row.dataset.call = c.call_id;
    cell(row, c.caller, "caller");
    cell(row, c.scenario);
    cell(row, c.node);
    const where = c.department ? ` · ${c.department}` : "";
    const who = c.agent ? ` · ${c.agent}` : "";
    cell(row, `${t(`call_${c.state}`)}${where}${who}`);
    cell(row, duration(c.seconds), "num");
  });
  document.getElementById("no-calls").hidden = calls.length > 0;
}

function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function drawFunnel(funnel, source) {
  const box = document.getElementById("funnel");
  const parts = [];
  const label = 150, bar = 18, gap = 8, width = 600, room = width - label - 60;
  for (const scenario of funnel) {
    const title = document.createElement("h3");
    title.textContent = scenario.scenario;
    parts.push(title);
    const most = Math.max(1, ...scenario.nodes.map((n) => n.calls));
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${scenario.nodes.length * (bar + gap)}`,
      role: "img", "data-scenario": scenario.scenario,
    });
    scenario.nodes.forEach((n, i) => {
      const y = i * (bar + gap);
      const group = svg("g", { "data-node": n.node, "data-calls": n.calls,
                               "data-abandoned": n.abandoned });
      group.appendChild(svg("text", { x: 0, y: y + bar - 4 }, n.node));
      const entered = Math.max(1, (n.calls / most) * room);
      group.appendChild(svg("rect", { class: "entered", x: label, y, width: entered,
                                      height: bar }));
      if (n.abandoned) {
        group.appendChild(svg("rect", { class: "abandoned", x: label, y,
                                        width: Math.max(1, (n.abandoned / most) * room),
                                        height: bar }));
      }
      group.appendChild(svg("text", { class: "count", x: label + entered + 6, y: y + bar - 4 },
                            n.abandoned ? `${number(n.calls)} / ${number(n.abandoned)}`
                                        : number(n.calls)));
      const tip = svg("title", {}, `${n.node}: ${t("entered")} ${number(n.calls)}, ` +
                                   `${t("abandoned")} ${number(n.abandoned)}`);
      group.appendChild(tip);
      chart.appendChild(group);
    });
    parts.push(chart);
  }
  box.replaceChildren(...parts);
  document.getElementById("no-funnel").hidden = funnel.length > 0;
  document.getElementById("funnel-source").textContent = t(`source_${source}`);
}

function draw(snapshot) {
  if (lang === null) {
    lang = snapshot.language in LABELS ? snapshot.language : "en";
  }
  applyLabels();
  setStatus("live");
  drawQueues(snapshot.queues);
  drawAgents(snapshot.agents);
  drawCalls(snapshot.calls);
  drawFunnel(snapshot.funnel, snapshot.today.source);
  document.body.dataset.updated = String(Date.now());
}

function connect() {
  applyLabels();
  setStatus("connecting");
  const events = new EventSource("/wallboard/events");
  events.onmessage = (message) => draw(JSON.parse(message.data));
  events.onerror = () => setStatus("lost");  // EventSource reconnects on its own
}

document.addEventListener("DOMContentLoaded", connect);
