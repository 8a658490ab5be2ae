// grounded-answer's page: sends a bundle to /v1/explain/stream and shows each section as the
// server emits it. Every text from the answer is set with textContent, never parsed as
// HTML; the only links are a reference's paper/code URLs (http or https only); the
// workflow graph is the server's SVG shown as an <img>, where an SVG can run no script.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const make = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };
  const RELEVANCE = {
    recommended: "recommended", relevant: "relevant", borderline: "borderline",
    not_relevant: "not relevant",
  };
  let controller = null;

  // ---- the form -------------------------------------------------------------------------
  // With API keys on, the page (static, no data) stays open and asks for a key, which it
  // keeps for this tab only (sessionStorage) and sends as a Bearer token with its request.
  $("key").value = sessionStorage.getItem("grounded-answer-key") || "";
  $("key").addEventListener("change", () => {
    sessionStorage.setItem("grounded-answer-key", $("key").value.trim());
  });
  fetch("/healthz").then((r) => r.json()).then((health) => {
    $("key-field").hidden = !health.auth;
    for (const name of health.backends || []) {
      const option = make("option", null, name);
      option.value = name;
      option.selected = name === health.backend;
      $("backend").append(option);
    }
  }).catch(() => { /* the select stays empty: the server's default backend is used */ });

  $("file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) $("bundle").value = await file.text();
  });
  $("ask").addEventListener("submit", (event) => { event.preventDefault(); run(); });
  $("stop").addEventListener("click", () => { if (controller) controller.abort(); });

  function setStatus(text, isError) {
    const line = $("status");
    line.textContent = text || "";
    line.classList.toggle("error", Boolean(isError));
  }

  function setBusy(busy) {
    $("run").disabled = busy;
    $("stop").hidden = !busy;
    document.body.dataset.state = busy ? "running" : "idle";
  }

  async function run() {
    const bundle = $("bundle").value;
    if (!bundle.trim()) {
      setStatus("Paste a bundle or open a file first.", true);
      return;
    }
    clearAnswer();
    controller = new AbortController();
    setBusy(true);
    setStatus("Sending the bundle…");
    const body = { bundle };
    if ($("backend").value) body.backend = $("backend").value;
    try {
      const response = await fetch("/v1/explain/stream", {
        method: "POST",
        headers: requestHeaders(),
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) {
        const data = await response.json().catch(() => null);
        showError(data && data.error, response.status);
        return;
      }
      finished = false;
      await readEvents(response.body, onEvent);
      if (!finished) setStatus("The server closed the stream before the answer came.", true);
    } catch (err) {
      if (err && err.name === "AbortError") {
        setStatus("Stopped. The server cancelled the model call.");
      } else {
        setStatus("The connection to the server failed: " + (err && err.message), true);
      }
    } finally {
      setBusy(false);
      controller = null;
    }
  }

  function requestHeaders() {
    const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    const key = $("key").value.trim();
    if (key) headers.Authorization = "Bearer " + key;
    return headers;
  }

  // Server-sent events over fetch (EventSource cannot POST): blocks end with a blank line;
  // "event:" names the block, "data:" lines carry JSON, lines opening with ":" are comments.
  async function readEvents(stream, handle) {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        let name = "message";
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "event") name = text;
          else if (field === "data") data.push(text);
        }
        if (data.length) handle(name, JSON.parse(data.join("\n")));
      }
    }
  }

  // ---- the answer, section by section -----------------------------------------------------
  let labels = {};
  let finished = false;

  function onEvent(name, data) {
    if (name === "answer" || name === "error") finished = true;
    switch (name) {
      case "status":
        setStatus(data.state === "queued"
          ? `Waiting for a free slot (${data.ahead} ahead)…`
          : "Retrieving passages and writing the answer…");
        break;
      case "plan": showPlan(data); break;
      case "coverage":
        setStatus(`The model read the question: P(covered) ${Number(data.score).toFixed(2)}. `
          + "Reading the sources…");
        break;
      case "task_named": break;
      case "judgement": showJudgement(data); break;
      case "task": showTask(data); break;
      case "step": addStep(data); break;
      case "graph": showGraph(data); break;
      case "reference": addReference(data); break;
      case "answer": showAnswer(data); break;
      case "error": showError(data.error, data.error && data.error.status); break;
      default: break;
    }
  }

  function clearAnswer() {
    labels = {};
    $("answer").hidden = false;
    $("question").textContent = "";
    for (const id of ["offline", "unanswerable", "task-cites", "graph", "plan", "verdict",
      "validation"]) {
      $(id).hidden = true;
    }
    setPending("task-statement", "Waiting for the task…");
    setPending("workflow-note", "Waiting for the workflow…");
    setPending("refs-note", "Waiting for the references…");
    for (const id of ["steps", "refs", "plan-rows", "checks", "report-lists"]) {
      $(id).replaceChildren();
    }
    $("graph-img").removeAttribute("src");
    $("facts").textContent = "";
  }

  function setPending(id, text) {
    const node = $(id);
    node.hidden = false;
    node.classList.add("pending");
    node.textContent = text;
  }

  function settle(id, text) {
    const node = $(id);
    node.classList.remove("pending");
    node.textContent = text || "";
    node.hidden = !text;
  }

  function showTask(task) {
    settle("task-statement", task.statement);
    const cited = (task.source_ids || []).map((id) => labels[id] || id);
    $("task-cites").textContent = cited.length ? "Supported by " + cited.join(", ") : "";
    $("task-cites").hidden = !cited.length;
  }

  // A section sent again (the final answer's version) replaces the one with its key.
  function place(list, key, item) {
    item.dataset.key = key;
    for (const old of list.children) {
      if (old.dataset.key === key) { old.replaceWith(item); return; }
    }
    list.append(item);
  }

  function judgedText(judgement) {
    const who = judgement.decided_by === "model" ? "judged by the language model"
      : "judged by the plan";
    return `${who} · P(yes) ${Number(judgement.score).toFixed(2)}`;
  }

  function showJudgement(judgement) {
    const rows = $("plan-rows");
    let read = 0;
    for (const row of rows.children) {
      if (row.dataset.source === judgement.source_id) {
        let tag = row.querySelector(".judged");
        if (!tag) { tag = make("span", "judged"); row.append(tag); }
        tag.textContent = `read by the model · P(yes) ${Number(judgement.score).toFixed(2)}`;
      }
      if (row.querySelector(".judged")) read += 1;
    }
    setStatus(`The model is reading the sources: ${read} read…`);
  }

  function addStep(step) {
    settle("workflow-note", "");
    const item = make("li");
    item.append(make("span", "model", step.model));
    if (labels[step.source_id]) item.append(" ", make("span", "label", labels[step.source_id]));
    for (const [word, text] of [["takes", step.input], ["does", step.action],
      ["gives", step.output]]) {
      const line = make("span", "io");
      line.append(make("b", null, word), " ", text);
      item.append(line);
    }
    place($("steps"), step.id || String($("steps").children.length), item);
  }

  function showGraph(graph) {
    // An SVG in an <img> is inert: no script runs and nothing is fetched from inside it.
    $("graph-img").src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(graph.svg);
    $("graph-img").alt = graph.summary || "";
    $("graph").hidden = false;
  }

  function safeHref(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  function addReference(ref) {
    settle("refs-note", "");
    labels[ref.source_id] = ref.label;
    const item = make("li");
    item.append(make("span", "label", ref.label), make("span", "title", ref.title),
      make("span", "role", ref.role === "model" ? "recommended model" : "paper"),
      make("p", "why", ref.why));
    const links = make("p", "links");
    for (const [url, name] of [[ref.paper_url, "Paper"], [ref.github_url, "GitHub"]]) {
      const href = safeHref(url);
      if (!href) continue;
      const link = make("a", null, name);
      link.href = href;
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      links.append(link);
    }
    item.append(links);
    place($("refs"), ref.label, item);
  }

  function planRows(plan) {
    if (Array.isArray(plan.sources)) return plan.sources;
    for (const value of Object.values(plan)) {
      if (Array.isArray(value) && value.length && value.every((v) => v && "relevance" in v)) {
        return value;
      }
    }
    return [];
  }

  function showPlan(plan) {
    if (!plan || typeof plan !== "object") return;
    const verdict = plan.verdict;
    if (verdict && typeof verdict === "object") {
      const line = $("verdict");
      const state = verdict.answerable === true ? "yes"
        : verdict.answerable === false ? "no" : "unknown";
      line.className = "verdict " + state;
      line.replaceChildren(make("b", null, state === "yes" ? "Answerable."
        : state === "no" ? "Not answerable." : "Verdict."), " ", verdict.reason || "");
      line.hidden = false;
    }
    const rows = $("plan-rows");
    rows.replaceChildren();
    for (const row of planRows(plan)) {
      const grade = row.relevance in RELEVANCE ? row.relevance : "unknown";
      const item = make("li", grade);
      item.dataset.source = row.source_id || "";
      item.append(make("span", "grade", RELEVANCE[row.relevance] || row.relevance));
      const label = row.label || labels[row.source_id];
      if (label) item.append(make("span", "label", label));
      // The reason continues the title ("X is the recommended model; ..."): one line.
      item.append(make("span", "title", row.title || row.source_id), " ",
        make("span", "reason", row.reason));
      if (row.judgement && typeof row.judgement === "object") {
        item.append(make("span", "judged " + (row.judgement.decided_by || ""),
          judgedText(row.judgement)));
      }
      rows.append(item);
    }
    $("plan").hidden = false;
  }

  // The final event holds the whole validated answer: draw every section again from it,
  // so the page ends in exactly the server's state whatever arrived before.
  function showAnswer(answer) {
    $("question").textContent = answer.question;
    $("offline").hidden = !answer.provenance.offline;
    $("unanswerable").hidden = answer.answerable;
    labels = {};
    for (const ref of answer.references) labels[ref.source_id] = ref.label;
    $("refs").replaceChildren();
    for (const ref of answer.references) addReference(ref);
    if (!answer.references.length) settle("refs-note", "No provided source supports an answer "
      + "to this question.");
    showTask(answer.task);
    $("steps").replaceChildren();
    if (answer.workflow && answer.answerable) {
      for (const step of answer.workflow.steps) addStep(step);
    } else {
      $("graph").hidden = true;
      settle("workflow-note", answer.note
        || "The provided sources do not describe a workflow for this question.");
    }
    if (answer.plan) showPlan(answer.plan);
    showReport(answer);
    setStatus(answer.answerable ? "Done." : "Done: the sources fall short; see the note.");
  }

  function showReport(answer) {
    const report = answer.validation;
    $("checks").replaceChildren(...report.checks.map((check) => make("li", null, check)));
    const lists = $("report-lists");
    lists.replaceChildren();
    for (const [title, items] of [["Repaired", report.repaired], ["Dropped", report.dropped],
      ["Unresolved", report.unresolved], ["Withheld", report.withheld]]) {
      if (!items || !items.length) continue;
      const list = make("ul");
      list.append(...items.map((item) => make("li", null, item)));
      lists.append(make("p", null, title + ":"), list);
    }
    const prov = answer.provenance;
    const timings = Object.entries(prov.timings)
      .map(([name, seconds]) => `${name} ${Math.round(seconds * 1000)} ms`).join(", ");
    $("facts").textContent = [
      `${report.attempts} model call(s), `
        + (report.valid_first_try ? "valid at the first try" : `policy ${report.policy}`),
      `backend ${prov.backend} (${prov.model})`,
      `corpus ${prov.corpus}, index ${prov.index_status}`,
      timings,
    ].filter(Boolean).join(" · ");
    $("validation").hidden = false;
  }

  function showError(error, status) {
    const message = (error && error.message) || `The server answered HTTP ${status}.`;
    const field = error && error.field ? ` (field: ${error.field})` : "";
    setStatus(message + field, true);
    for (const id of ["task-statement", "workflow-note", "refs-note"]) {
      if ($(id).classList.contains("pending")) settle(id, "");
    }
  }
})();
