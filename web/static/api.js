// Shared page helpers. Every write goes through the JSON API with the session cookie and the
// CSRF token; text from the server is always set with textContent, never parsed as HTML.
"use strict";

const nf = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `request failed (${status})`);
      this.status = status;
      this.details = error.details || [];
    }
  }

  async function api(method, url, body) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": csrf},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // el("p", {class: "x", onclick: f}, "text", child) builds DOM without HTML parsing.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "value") node.value = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function debounce(fn, ms) {
    let timer;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  // The label table (engine/labels.py), embedded in every page: label("days_past_due", "fields")
  // -> "Days past due"; a name it does not know yet reads as words, as in label() there.
  const LABELS = JSON.parse(document.getElementById("labels").textContent);
  function label(name, group) {
    const known = (LABELS[group] || {})[name];
    if (known !== undefined) return known;
    if (group === "fields" && name.startsWith("attributes.")) return `${name.slice(11)} (imported)`;
    const words = name.replace(/[_-]/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  // One node's run figures: {"passed": 3, "skipped": {"opted_out": 1}} ->
  // "passed 3 · skipped: opted out of this channel 1" (web/pages figures() in Python).
  const ORDER = ["passed", "awarded", "queued", "created", "skipped"];
  const rank = (name) => (ORDER.includes(name) ? ORDER.indexOf(name) : ORDER.length);
  function figures(counts) {
    const entries = Object.entries(counts || {});
    entries.sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
    return entries.map(([name, value]) => {
      if (value && typeof value === "object") {
        const parts = Object.entries(value).map(([k, v]) => `${label(k, "skip_reasons")} ${v}`);
        return parts.length ? `${name}: ${parts.join(", ")}` : null;
      }
      return `${name} ${value}`;
    }).filter(Boolean).join(" · ");
  }

  function message(box, text) {
    if (!box) return;
    box.textContent = text || "";
    box.hidden = !text;
  }

  // Show an API error on a form: each detail next to the field its path names ($.field or
  // $.field[0]...), the rest in the form's alert box.
  function showFormErrors(form, error) {
    clearFormErrors(form);
    const loose = [];
    for (const detail of error.details || []) {
      const match = /^\$\.([A-Za-z_]+)/.exec(detail.path || "");
      const field = match && form.querySelector(`[name="${match[1]}"]`);
      if (field) {
        field.setAttribute("aria-invalid", "true");
        const note = el("p", {class: "field-error"}, detail.message);
        (field.closest(".field") || field.parentNode).append(note);
      } else {
        loose.push(detail.path ? `${detail.path}: ${detail.message}` : detail.message);
      }
    }
    const text = loose.length ? `${error.message}: ${loose.join("; ")}` : error.message;
    message(form.querySelector(".form-error"), text);
  }

  function clearFormErrors(form) {
    form.querySelectorAll(".field-error").forEach((n) => n.remove());
    form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
    message(form.querySelector(".form-error"), "");
  }

  // A <textarea data-json> holds a JSON value (settings' quiet hours and frequency caps).
  function parseJson(field) {
    try {
      return JSON.parse(field.value);
    } catch (_error) {
      return field.value;  // sent as text: the API names the field and what it expected
    }
  }

  function formValues(form) {
    const body = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled) continue;
      // Checkboxes marked data-list gather the values of those ticked into one list.
      if (field.type === "checkbox" && "list" in field.dataset) {
        body[field.name] = body[field.name] || [];
        if (field.checked) body[field.name].push(field.value);
      } else if (field.type === "checkbox") body[field.name] = field.checked;
      else if (field.type === "number") body[field.name] = field.value === "" ? null : Number(field.value);
      else if (field.value === "" && field.dataset.empty === "null") body[field.name] = null;
      else if ("json" in field.dataset) body[field.name] = parseJson(field);
      else body[field.name] = field.value;
    }
    return body;
  }

  // <form data-api-method="PUT" data-api-url="/api/v1/..." [data-reload] [data-done="text"]
  //  [data-show="field"] [data-confirm="question"]>: submitted as JSON to the API, errors
  //  shown on the fields.
  function bindApiForms() {
    document.querySelectorAll("form[data-api-url]").forEach((form) => {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
        const button = form.querySelector('[type="submit"]');
        button.disabled = true;
        try {
          const answer = await api(form.dataset.apiMethod, form.dataset.apiUrl, formValues(form));
          clearFormErrors(form);
          if (form.hasAttribute("data-reload")) { window.location.reload(); return; }
          const done = form.querySelector(".form-done");
          if (done) done.textContent = form.dataset.show ? answer[form.dataset.show] : form.dataset.done;
        } catch (error) {
          showFormErrors(form, error);
        } finally {
          button.disabled = false;
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", bindApiForms);

  // The save and delete buttons of a segment or template page: POST a new document (then
  // open its page), PUT an existing one, DELETE it (then back to the list); errors are shown
  // on the form.
  function bindSaveForm(form, kind, existing, documentOf) {
    const remove = form.querySelector(".delete");
    if (remove && existing) {
      remove.hidden = false;
      remove.addEventListener("click", async () => {
        if (!window.confirm(`Delete ${existing.key}?`)) return;
        try {
          await api("DELETE", `/api/v1/${kind}/${encodeURIComponent(existing.key)}`);
          window.location.assign(`/${kind}`);
        } catch (error) {
          showFormErrors(form, error);
        }
      });
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const saved = existing
          ? await api("PUT", `/api/v1/${kind}/${encodeURIComponent(existing.key)}`, documentOf())
          : await api("POST", `/api/v1/${kind}`, documentOf());
        clearFormErrors(form);
        form.querySelector(".form-done").textContent = "Saved.";
        if (!existing) window.location.assign(`/${kind}/${encodeURIComponent(saved.key)}`);
      } catch (error) {
        showFormErrors(form, error);
      }
    });
  }

  function boot() {
    const node = document.getElementById("boot");
    return node ? JSON.parse(node.textContent) : {};
  }

  return {api, el, debounce, figures, label, message, showFormErrors, clearFormErrors, bindSaveForm, boot};
})();
