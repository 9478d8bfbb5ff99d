// The data set page's blast form: rows chosen by checkbox (kept across pages of the same data
// set in sessionStorage) or all of them, a template, a send time and a purpose; Preview
// counts what would be sent, Send makes the blast once (the page's client token) and opens it.
"use strict";

(() => {
  const boot = nf.boot();
  const form = document.getElementById("blast-form");
  if (!form) return;
  const storeKey = `nf-blast:${boot.segment}:${boot.date}`;
  const chosen = new Set(JSON.parse(sessionStorage.getItem(storeKey) || "[]"));
  const all = document.getElementById("blast-all");
  const rows = [...document.querySelectorAll("input.choose-row")];
  const counter = document.getElementById("blast-chosen");
  const outcome = document.getElementById("blast-outcome");
  const when = document.getElementById("blast-when");

  function remember() {
    sessionStorage.setItem(storeKey, JSON.stringify([...chosen]));
    counter.textContent = all.checked ? `all ${boot.total} rows` :
      `${chosen.size} row${chosen.size === 1 ? "" : "s"} chosen`;
    rows.forEach((box) => { box.disabled = all.checked; });
  }

  rows.forEach((box) => {
    box.checked = chosen.has(box.value);
    box.addEventListener("change", () => {
      if (box.checked) chosen.add(box.value); else chosen.delete(box.value);
      remember();
    });
  });
  all.addEventListener("change", remember);
  document.getElementById("blast-clear").addEventListener("click", () => {
    chosen.clear();
    rows.forEach((box) => { box.checked = false; });
    all.checked = false;
    remember();
  });
  when.addEventListener("change", () => {
    document.getElementById("blast-hours-field").hidden = when.value !== "delay";
    document.getElementById("blast-at-field").hidden = when.value !== "datetime";
  });
  remember();

  function sendAt() {
    if (when.value === "delay") {
      return {mode: "delay", hours: Number(document.getElementById("blast-hours").value)};
    }
    if (when.value === "datetime") {
      const local = document.getElementById("blast-at").value;
      // The browser's wall clock, sent with its offset; an empty field is left to the API.
      return {mode: "datetime", value: local ? new Date(local).toISOString() : ""};
    }
    return {mode: "now"};
  }

  function body() {
    const out = {segment: boot.segment, date: boot.date, client_token: boot.client_token,
                 template: form.elements.template.value, purpose: form.elements.purpose.value,
                 send_at: sendAt()};
    if (all.checked) out.all = true; else out.customers = [...chosen];
    return out;
  }

  function describe(answer) {
    const rowsText = answer.selection === "all" ? `${answer.requested} rows` :
      `${answer.requested} chosen`;
    const outside = answer.not_members.length ?
      ` (not in the data set, not sent: ${answer.not_members.join(", ")})` : "";
    return `${rowsText}${outside}: ${nf.figures({queued: answer.counts.queued,
                                                  skipped: answer.counts.skipped})}`;
  }

  document.getElementById("blast-preview").addEventListener("click", async () => {
    try {
      const answer = await nf.api("POST", "/api/v1/blasts/preview", body());
      nf.clearFormErrors(form);
      outcome.textContent = `Would send to ${describe(answer)}`;
    } catch (error) {
      outcome.textContent = "";
      nf.showFormErrors(form, error);
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const count = all.checked ? boot.total : chosen.size;
    if (!window.confirm(`Send ${form.elements.template.value || "the message"} to ${count} ` +
                        `row${count === 1 ? "" : "s"}?`)) return;
    const button = document.getElementById("blast-send");
    button.disabled = true;
    try {
      const made = await nf.api("POST", "/api/v1/blasts", body());
      sessionStorage.removeItem(storeKey);
      window.location.assign(`/blasts/${made.id}`);
    } catch (error) {
      nf.showFormErrors(form, error);
      button.disabled = false;
    }
  });
})();
