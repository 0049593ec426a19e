// The Backups page. It calls the archivist API next to it (./api/...) with the Airflow UI's
// login: the page is served from Airflow's own origin, so the browser sends the UI's
// HttpOnly `_token` cookie with every same-origin request, and the API authenticates it
// with Airflow's own security dependencies. No token is ever read or stored by this script.
"use strict";

(() => {
  const API = new URL("api/", document.baseURI);
  const JOBS = ["postgres", "elasticsearch", "storage"];
  const LABEL = { postgres: "PostgreSQL", elasticsearch: "Elasticsearch", storage: "Storage" };
  const CONN = { postgres: "archivist_postgres", elasticsearch: "archivist_elasticsearch", storage: "archivist_storage" };
  const ACTIVE = new Set(["queued", "running", "restarting", "up_for_retry", "scheduled"]);

  const PAGE = 10; // bundles shown before "Show all"
  const S = { me: null, bundles: [], bucket: "", retention: null, runs: null, uiRoot: "/", highlightRun: null,
              timer: null, lastBackupStates: new Map(), showAll: false };

  const $ = (sel, root = document) => root.querySelector(sel);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c);
    return node;
  };

  // --- the Airflow UI around us ------------------------------------------------------------

  function parentDoc() {
    try { return window.parent !== window ? window.parent.document : null; } catch { return null; }
  }

  function syncTheme() {
    const doc = parentDoc();
    let dark;
    if (doc) dark = doc.documentElement.classList.contains("dark");
    else dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    document.documentElement.dataset.theme = dark ? "dark" : "light";
  }

  function watchTheme() {
    syncTheme();
    const doc = parentDoc();
    if (doc) new MutationObserver(syncTheme).observe(doc.documentElement, { attributes: true, attributeFilter: ["class"] });
    else window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", syncTheme);
  }

  // Links to Airflow pages open in the Airflow UI around the iframe, through its router
  // (the iframe's sandbox forbids navigating the top window, but not its history).
  function openInAirflow(href) {
    try {
      const top = window.top;
      if (top !== window && top.location.origin === window.location.origin) {
        top.history.pushState({}, "", href);
        top.dispatchEvent(new PopStateEvent("popstate", { state: {} }));
        return;
      }
    } catch { /* not the Airflow UI around us: plain navigation below */ }
    window.location.href = href;
  }

  document.addEventListener("click", (ev) => {
    const a = ev.target.closest("a[data-airflow]");
    if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    openInAirflow(a.getAttribute("href"));
  });

  const airflowLink = (href, text, cls) => el("a", { href, "data-airflow": "", class: cls, text });
  const dagUrl = (dagId) => `${S.uiRoot.replace(/\/$/, "")}/dags/${encodeURIComponent(dagId)}`;

  // --- the API -------------------------------------------------------------------------------

  function detail(body) {
    if (!body) return "";
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    if (body.detail && body.detail.message) return body.detail.message;
    return "";
  }

  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(new URL(path, API), {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await res.json(); } catch { /* no JSON body */ }
    if (!res.ok) {
      const err = new Error(detail(data) || `HTTP ${res.status} ${res.statusText}`);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function explain(err, doing) {
    if (err.status === 401) return `Your Airflow session has ended (${err.message}): reload the page to log in again.`;
    if (err.status === 403) return `You are not allowed to ${doing}: ${err.message}.`;
    return `Could not ${doing}: ${err.message}`;
  }

  // --- formatting ------------------------------------------------------------------------------

  const num = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : String(n));
  const plural = (n, one, many) => `${num(n)} ${n === 1 ? one : many || one + "s"}`;

  function bytes(n) {
    if (typeof n !== "number") return "";
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)}\u00a0${units[i]}`; // never split from its number
  }

  function seconds(s) {
    if (typeof s !== "number") return "";
    if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function utc(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)} UTC`;
  }

  function age(iso) {
    if (!iso) return "";
    const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 45) return "just now";
    if (s < 90) return "1 min ago";
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 5400) return "1 hour ago";
    if (s < 86400) return `${Math.round(s / 3600)} hours ago`;
    if (s < 172800) return "1 day ago";
    return `${Math.round(s / 86400)} days ago`;
  }

  function jobText(job, counts) {
    counts = counts || {};
    if (job === "postgres" && "tables" in counts) {
      return [plural(counts.tables, "table"), "rows_estimate" in counts ? `~${plural(counts.rows_estimate, "row")}` : null];
    }
    if (job === "elasticsearch" && ("documents" in counts || "indices" in counts)) {
      const n = counts.indices && typeof counts.indices === "object" ? Object.keys(counts.indices).length : counts.indices;
      return [n !== undefined ? plural(n, "index", "indices") : null,
              "documents" in counts ? plural(counts.documents, "doc") : null];
    }
    if (job === "storage" && "objects" in counts) {
      return [plural(counts.objects, "object"), "bytes" in counts ? bytes(counts.bytes) : null];
    }
    return Object.entries(counts).filter(([, v]) => typeof v !== "object").map(([k, v]) => `${num(v)} ${k}`);
  }

  function indicesOf(b) {
    const es = (b.jobs || []).find((j) => j.job === "elasticsearch");
    return es && es.counts && typeof es.counts.indices === "object" ? Object.keys(es.counts.indices).sort() : [];
  }

  // --- the bundles table ---------------------------------------------------------------------

  function jobCell(b, job) {
    const j = (b.jobs || []).find((x) => x.job === job);
    if (!j) return el("td", { class: "none", text: "—" });
    const parts = jobText(job, j.counts).filter(Boolean);
    const title = job === "elasticsearch" ? indicesOf(b).map((i) => `${i}: ${num(j.counts.indices[i])}`).join("\n") : undefined;
    const sub = [seconds(j.time_seconds), j.server_version && j.server_version !== "S3" ? `v${j.server_version}` : null]
      .filter(Boolean).join(" · ");
    return el("td", { class: "job", title }, parts.join(" · ") || "—", sub ? el("span", { class: "sub", text: sub }) : null);
  }

  // The bundle's last drill (archivist_drill): a tag saying how it went, the whole verdict on hover.
  function drillTag(b) {
    const d = b.drill;
    if (!d) return el("span", { class: "tag tag-drill", "data-drill": "none", title: "Never drilled: archivist_drill restores a bundle into scratch targets and compares", text: "not drilled" });
    const when = d.drilled_at ? d.drilled_at.slice(0, 10) : "";
    const text = d.result === "matched" ? `drill ✓ ${when}` : d.result ? `drill ✗ ${when}` : "drill ?";
    return el("span", { class: `tag tag-drill ${d.result === "matched" ? "tag-ok" : "tag-bad"}`, "data-drill": d.result || "unreadable",
                        title: d.summary, text });
  }

  function madeByCell(b) {
    const a = b.airflow || {};
    if (a.url) {
      return el("td", {}, airflowLink(a.url, a.dag_id), el("span", { class: "sub key run-id", title: a.run_id, text: a.run_id }));
    }
    if (b.error) return el("td", { class: "none", text: "—" });
    return el("td", {}, el("span", { class: "muted", text: "archivist command" }),
      el("span", { class: "sub", text: "not an Airflow run" }));
  }

  // The retention rules that keep a bundle ("last 30", "daily 7"), as the next rotation applies them.
  function keptCell(b) {
    const why = S.retention && S.retention.error;
    if (!Array.isArray(b.retention)) return el("td", { class: "none", title: why || undefined, text: "—" });
    if (!b.retention.length) {
      return el("td", { class: "kept" }, el("span", { class: "tag tag-doomed", title: "No retention rule keeps it: the next rotation deletes it", text: "next rotation" }));
    }
    return el("td", { class: "kept" }, ...b.retention.map((r) => el("span", { class: "tag tag-rule", text: r })));
  }

  function renderBundles() {
    const tbody = $("#bundles tbody");
    tbody.replaceChildren();
    const canRestore = S.me && S.me.can_restore;
    const denied = "Starting runs of archivist_restore needs permission to trigger that DAG";
    if (!S.bundles.length) {
      tbody.append(el("tr", {}, el("td", { colspan: 9, class: "empty", text: "No bundle in the backup bucket yet: run archivist_backup." })));
    }
    const shown = S.showAll ? S.bundles : S.bundles.slice(0, PAGE);
    shown.forEach((b, i) => {
      const created = b.created_at || b.last_modified;
      const keyCell = el("td", { class: "key-cell" },
        el("a", { class: "key key-link", href: "#", title: "Show meta.json", dataset: { meta: b.key }, text: b.key }),
        el("br"),
        i === 0 ? el("span", { class: "tag tag-latest", text: "latest" }) : null,
        b.format_version !== null && b.format_version !== undefined
          ? el("span", { class: "tag", title: `format version ${b.format_version}, archivist ${b.archivist_version || "?"}`, text: `v${b.format_version}` })
          : null,
        drillTag(b),
        b.namespace ? el("span", { class: "sub", text: b.namespace }) : null);
      const cells = b.error
        ? [el("td", { colspan: 3, class: "bad", text: `meta.json unreadable: ${b.error}` })]
        : JOBS.map((job) => jobCell(b, job));
      const actions = el("td", { class: "actions" }, el("div", { class: "stack" },
        el("button", { type: "button", class: "btn btn-outline btn-xs", "data-action": "verify", "data-key": b.key,
                       disabled: !canRestore, title: canRestore ? "Dry run: check every file, write nothing" : denied,
                       text: "Verify" }),
        el("button", { type: "button", class: "btn btn-outline btn-xs", "data-action": "restore", "data-key": b.key,
                       disabled: !canRestore || !!b.error, title: canRestore ? "Restore this bundle…" : denied,
                       text: "Restore…" })));
      tbody.append(el("tr", { "data-key": b.key },
        keyCell,
        el("td", { title: utc(created) }, age(created), el("span", { class: "sub", text: utc(created) })),
        el("td", { class: "num", title: `${num(b.size)} bytes` }, bytes(b.size)),
        ...cells,
        madeByCell(b),
        keptCell(b),
        actions));
    });
    const more = $("#bundles-more");
    more.replaceChildren();
    more.hidden = S.bundles.length <= PAGE;
    more.append(el("button", { type: "button", class: "btn btn-outline btn-xs", id: "show-all",
      onclick: () => { S.showAll = !S.showAll; renderBundles(); },
      text: S.showAll ? `Show the newest ${PAGE}` : `Show all ${S.bundles.length} bundles` }));
    const total = S.bundles.reduce((n, b) => n + (b.size || 0), 0);
    $("#bundle-count").textContent = S.bundles.length ? `(${S.bundles.length})` : "";
    $("#summary").textContent = `Bucket ${S.bucket} · ${plural(S.bundles.length, "bundle")} · ${bytes(total)} in all` +
      (S.bundles.length ? ` · newest ${age(S.bundles[0].created_at || S.bundles[0].last_modified)}` : "") +
      (S.retention && S.retention.policy ? ` · rotation keeps: ${S.retention.policy}` : "") +
      (S.retention && S.retention.error ? ` · retention rules: ${S.retention.error}` : "");
    if (window.ArchivistTrends) window.ArchivistTrends.show(S.bundles);
  }

  // --- the runs tables -----------------------------------------------------------------------

  function stateBadge(state) {
    const s = state || "none";
    return el("span", { class: `state state-${s}`, text: s });
  }

  // manual__2026-11-26T03:29:42.618061+00:00 -> manual__2026-11-26T03:29:42.618 (the full id is its title)
  const shortRun = (id) => id.replace(/(T\d\d:\d\d:\d\d\.\d{3})\d*/, "$1").replace(/\+00:00$/, "");

  function duration(r) {
    if (!r.start_date) return "";
    const end = r.end_date ? new Date(r.end_date) : new Date();
    return seconds((end - new Date(r.start_date)) / 1000) + (r.end_date ? "" : " …");
  }

  function runCells(dagId, r) {
    if (dagId === "archivist_backup") {
      const made = S.bundles.find((b) => b.airflow && b.airflow.run_id === r.dag_run_id);
      return el("td", {}, made ? el("span", { class: "key", text: made.key }) : el("span", { class: "none", text: "—" }));
    }
    const c = r.conf || {};
    const jobs = Array.isArray(c.jobs) ? c.jobs.join(", ") : "all jobs";
    return el("td", {},
      c.key ? el("span", { class: "key", text: c.key }) : el("span", { class: "none", text: "—" }),
      c.dry_run ? el("span", { class: "tag", text: "dry run" }) : null,
      el("span", { class: "sub", text: `${jobs} · ${c.mode || "empty"}` }));
  }

  function renderRuns() {
    if (!S.runs) return;
    for (const dagId of ["archivist_backup", "archivist_restore"]) {
      const info = S.runs.dags[dagId];
      const tbody = $(`#runs-${dagId} tbody`);
      tbody.replaceChildren();
      const note = $(`#paused-${dagId}`);
      note.replaceChildren();
      if (!info.known) {
        note.append(el("div", { class: "alert", text: `${dagId} is not parsed yet: its runs cannot start until the DAG processor has read it.` }));
      } else if (info.is_paused) {
        note.append(el("div", { class: "alert" }, el("b", { text: `${dagId} is paused` }),
          ": runs started here wait in the queue until it is unpaused in ", airflowLink(info.url, "its page"), "."));
      }
      if (!info.runs.length) {
        tbody.append(el("tr", {}, el("td", { colspan: 5, class: "empty", text: "No runs yet." })));
      }
      for (const r of info.runs) {
        const started = r.start_date || r.queued_at || r.run_after;
        const row = el("tr", { "data-run": r.dag_run_id, class: r.dag_run_id === S.highlightRun ? "highlight" : undefined },
          el("td", {}, stateBadge(r.state)),
          el("td", { title: r.dag_run_id }, airflowLink(r.url, shortRun(r.dag_run_id), "key"),
            el("span", { class: "sub", text: [r.triggering_user_name, r.run_type].filter(Boolean).join(" · ") })),
          el("td", { title: utc(started), class: "nowrap" }, age(started)),
          el("td", { class: "num" }, duration(r)),
          runCells(dagId, r));
        tbody.append(row);
      }
      document.querySelectorAll(`a.dag-link[data-dag="${dagId}"]`).forEach((a) => {
        a.setAttribute("href", info.url);
        a.setAttribute("data-airflow", "");
      });
    }
  }

  // --- alerts --------------------------------------------------------------------------------

  function alertBox(kind, ...content) {
    const box = el("div", { class: `alert alert-${kind}` }, ...content);
    $("#alerts").replaceChildren(box);
    return box;
  }

  // --- loading -------------------------------------------------------------------------------

  async function loadMe() {
    S.me = await api("me");
    S.uiRoot = S.me.ui_root || "/";
    $("#who").textContent = `Signed in as ${S.me.user}${S.me.can_restore ? "" : " (read only)"}`;
  }

  async function loadBundles() {
    const data = await api("bundles");
    S.bundles = data.bundles;
    S.bucket = data.bucket;
    S.retention = data.retention || null;
    renderBundles();
  }

  async function loadRuns() {
    S.runs = await api("runs?limit=8");
    // a backup that just finished made a new bundle: list it
    let finished = false;
    for (const r of S.runs.dags.archivist_backup.runs) {
      const before = S.lastBackupStates.get(r.dag_run_id);
      if (before && ACTIVE.has(before) && !ACTIVE.has(r.state)) finished = true;
      S.lastBackupStates.set(r.dag_run_id, r.state);
    }
    if (finished) await loadBundles();
    renderRuns();
  }

  function schedule() {
    clearTimeout(S.timer);
    const active = S.runs && Object.values(S.runs.dags).some((d) => d.runs.some((r) => ACTIVE.has(r.state)));
    S.timer = setTimeout(async () => {
      try { await loadRuns(); } catch { /* shown on the next manual refresh */ }
      schedule();
    }, active ? 3000 : 15000);
  }

  async function loadAll() {
    $("#refresh").disabled = true;
    try {
      await loadMe();
      const [b, r] = await Promise.allSettled([loadBundles(), loadRuns()]);
      const failed = [b, r].filter((x) => x.status === "rejected");
      if (failed.length) {
        alertBox("error", explain(failed[0].reason, b.status === "rejected" ? "list the bundles" : "read the recent runs"));
      }
      if (b.status === "rejected") {
        $("#bundles tbody").replaceChildren(el("tr", {}, el("td", { colspan: 9, class: "empty", text: "Bundles unavailable." })));
        $("#summary").textContent = "";
      }
    } catch (err) {
      alertBox("error", explain(err, "open the Backups page"));
      $("#summary").textContent = "";
      $("#bundles tbody").replaceChildren(el("tr", {}, el("td", { colspan: 9, class: "empty", text: "Not signed in." })));
    } finally {
      $("#refresh").disabled = false;
      schedule();
    }
  }

  // --- dialogs -------------------------------------------------------------------------------

  const bundleByKey = (key) => S.bundles.find((b) => b.key === key);

  document.addEventListener("click", (ev) => {
    const close = ev.target.closest("[data-close]");
    if (close) close.closest("dialog").close();
  });

  function selected(form) {
    return {
      jobs: [...form.querySelectorAll('input[name="job"]:checked')].map((i) => i.value),
      mode: form.querySelector('input[name="mode"]:checked').value,
      dry_run: form.querySelector("#restore-dry-run").checked,
      allow_unchecked: form.querySelector("#restore-allow-unchecked").checked,
    };
  }

  function impact(b, { jobs, mode, dry_run: dryRun, allow_unchecked: unchecked }) {
    const box = $("#restore-impact");
    box.replaceChildren();
    box.classList.remove("danger", "callout-info");
    const jobNames = jobs.map((j) => LABEL[j]).join(", ");
    const head = el("p", { style: "margin:0" }, el("b", { text: dryRun ? "Dry run" : "Restore" }), ` of `,
      el("code", { text: b.key }), ` — jobs: ${jobs.join(", ") || "none"} — mode: ${mode}`);
    box.append(head);
    if (unchecked) box.append(el("p", { style: "margin:6px 0 0", text: "Without checksums: if this bundle has none, its contents are restored unverified." }));
    if (!jobs.length) {
      box.append(el("p", { style: "margin:6px 0 0", text: "Choose at least one job." }));
      return;
    }
    if (dryRun) {
      box.classList.add("callout-info");
      box.append(el("p", { style: "margin:6px 0 0", text: `Nothing is written. archivist_restore checks every file of the bundle and reports what it would restore for ${jobNames}.` }));
      return;
    }
    const counts = Object.fromEntries((b.jobs || []).map((j) => [j.job, j.counts || {}]));
    const indices = indicesOf(b);
    const list = el("ul");
    for (const job of jobs) {
      const c = counts[job] || {};
      let text;
      if (mode === "replace") {
        if (job === "postgres") text = `the schemas the dump creates are dropped with everything in them, and in public only the tables, views, sequences, types and functions the dump creates (public itself stays); then ${jobText(job, c).filter(Boolean).join(", ")} are restored`;
        else if (job === "elasticsearch") text = `indices ${indices.join(", ") || "in the bundle"} and the bundle's templates and aliases, by exact name, are deleted and recreated (${jobText(job, c).filter(Boolean).join(", ")})`;
        else text = `the bundle's ${jobText(job, c).filter(Boolean).join(" (")}${"bytes" in c ? ")" : ""} overwrite the objects with the same keys in the bucket`;
      } else {
        if (job === "postgres") text = `restores ${jobText(job, c).filter(Boolean).join(", ")} into the database, which must hold none of its tables`;
        else if (job === "elasticsearch") text = `restores indices ${indices.join(", ") || "in the bundle"}, which must not exist yet`;
        else text = `restores ${jobText(job, c).filter(Boolean).join(", ")} into the bucket, which must be empty`;
      }
      list.append(el("li", {}, el("b", { text: `${LABEL[job]}` }), ` (connection ${CONN[job]}): ${text}`));
    }
    if (mode === "replace") {
      box.classList.add("danger");
      box.append(el("p", { style: "margin:6px 0 0" }, el("b", { text: "This overwrites live data:" })), list,
        el("p", { style: "margin:6px 0 0", text: "Nothing the bundle does not contain is touched." }));
    } else {
      box.append(list, el("p", { style: "margin:6px 0 0", text: "Nothing is overwritten: if a target already holds data, the run fails before writing anything." }));
    }
  }

  function refreshRestoreDialog(b) {
    const form = $("#restore-form");
    const choice = selected(form);
    impact(b, choice);
    const typed = choice.mode === "replace" && !choice.dry_run;
    $("#restore-typed").hidden = !typed;
    const submit = $("#restore-submit");
    const confirmed = !typed || $("#restore-confirm-input").value.trim() === b.key.split("-").pop() ||
      $("#restore-confirm-input").value.trim() === b.key;
    submit.disabled = !choice.jobs.length || !confirmed;
    submit.className = `btn ${typed ? "btn-danger" : "btn-primary"}`;
    submit.textContent = choice.dry_run ? "Start dry run" : typed ? "Overwrite and restore" : "Restore";
  }

  function openRestore(key) {
    const b = bundleByKey(key);
    if (!b) return;
    const dialog = $("#restore-dialog");
    const form = $("#restore-form");
    form.reset();
    $("#restore-title").textContent = `Restore ${b.key}`;
    $("#restore-key").textContent = b.key;
    $("#restore-id").textContent = b.key.split("-").pop();
    const made = b.airflow && b.airflow.run_id ? `by ${b.airflow.dag_id} run ${b.airflow.run_id}` : "by the archivist command";
    $("#restore-made").textContent = `Created ${utc(b.created_at || b.last_modified)} (${age(b.created_at || b.last_modified)}) ${made} · ${bytes(b.size)}`;
    const present = new Set((b.jobs || []).map((j) => j.job));
    const jobs = $("#restore-jobs");
    jobs.replaceChildren(...JOBS.map((job) => {
      const j = (b.jobs || []).find((x) => x.job === job);
      return el("label", { class: "choice" },
        el("input", { type: "checkbox", name: "job", value: job, checked: present.has(job), disabled: !present.has(job) }),
        el("span", {}, el("b", { text: LABEL[job] }),
          el("span", { class: "sub", text: j ? jobText(job, j.counts).filter(Boolean).join(" · ") : "not in this bundle" })));
    }));
    $("#restore-error").hidden = true;
    form.onchange = form.oninput = () => refreshRestoreDialog(b);
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const choice = selected(form);
      const submit = $("#restore-submit");
      submit.disabled = true;
      try {
        const run = await api(`bundles/${encodeURIComponent(b.key)}/restore`, { method: "POST", body: choice });
        dialog.close();
        started(run, choice.dry_run ? "dry-run restore" : "restore");
      } catch (err) {
        $("#restore-error").textContent = explain(err, "start the restore");
        $("#restore-error").hidden = false;
        submit.disabled = false;
      }
    };
    refreshRestoreDialog(b);
    dialog.showModal();
  }

  function openVerify(key) {
    const b = bundleByKey(key);
    if (!b) return;
    const dialog = $("#verify-dialog");
    $("#verify-title").textContent = `Verify ${b.key}`;
    $("#verify-key").textContent = b.key;
    $("#verify-error").hidden = true;
    const form = $("#verify-form");
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const submit = $("#verify-submit");
      submit.disabled = true;
      try {
        const run = await api(`bundles/${encodeURIComponent(b.key)}/verify`, { method: "POST", body: {} });
        dialog.close();
        started(run, "verification");
      } catch (err) {
        $("#verify-error").textContent = explain(err, "start the verification");
        $("#verify-error").hidden = false;
      } finally {
        submit.disabled = false;
      }
    };
    dialog.showModal();
  }

  async function openMeta(key) {
    const dialog = $("#meta-dialog");
    $("#meta-title").textContent = `${key} · meta.json`;
    $("#meta-body").textContent = "Loading…";
    dialog.showModal();
    try {
      $("#meta-body").textContent = JSON.stringify(await api(`bundles/${encodeURIComponent(key)}/meta`), null, 2);
    } catch (err) {
      $("#meta-body").textContent = explain(err, "read meta.json");
    }
  }

  async function started(run, what) {
    S.highlightRun = run.dag_run_id;
    alertBox("success", `Started the ${what} of `, el("code", { text: run.conf.key }), ": run ",
      airflowLink(run.url, run.dag_run_id, "key"), " of archivist_restore.");
    try { await loadRuns(); } catch { /* the next poll shows it */ }
    schedule();
  }

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-action]");
    if (btn) {
      if (btn.dataset.action === "restore") openRestore(btn.dataset.key);
      else if (btn.dataset.action === "verify") openVerify(btn.dataset.key);
      return;
    }
    const meta = ev.target.closest("a[data-meta]");
    if (meta) {
      ev.preventDefault();
      openMeta(meta.dataset.meta);
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    watchTheme();
    $("#refresh").addEventListener("click", loadAll);
    loadAll();
  });
})();
