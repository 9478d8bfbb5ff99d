// The template editor: save through the API, and a live preview (debounced) rendered by the
// server for a chosen customer, with characters, SMS parts and encoding.
"use strict";

(() => {
  const {api, el, debounce, message} = nf;
  const boot = nf.boot();
  const form = document.getElementById("template-form");
  const f = form.elements;
  const customer = document.getElementById("tpl-customer");
  const counter = document.getElementById("sms-counter");
  const previewError = document.querySelector(".preview-error");
  const template = boot.template;

  // The customer to preview for: any customer, found by the customers search as one types.
  const options = document.getElementById("tpl-customer-options");
  const known = new Set();
  function offer(customers) {
    known.clear();
    options.replaceChildren(...customers.map((c) => {
      known.add(c.external_id);
      return el("option", {value: c.external_id},
                `${c.first_name || ""} ${c.last_name || ""} ${c.email || c.phone || ""}`.trim());
    }));
  }
  offer(boot.customers);
  if (boot.customers.length) customer.value = boot.customers[0].external_id;
  const search = debounce(async () => {
    const q = customer.value.trim();
    if (!q || known.has(q)) return;
    try {
      const found = await api("GET", `/api/v1/customers?q=${encodeURIComponent(q)}`);
      offer(found.items);
      if (found.items.length === 1) customer.value = found.items[0].external_id;
      if (known.has(customer.value)) preview();
    } catch (error) { message(previewError, error.message); }
  }, 250);
  if (template) {
    f.key.value = template.key;
    f.key.readOnly = true;
    f.name.value = template.name || "";
    f.channel.value = template.channel;
    f.subject.value = template.subject || "";
    f.body.value = template.body;
    f.transliterate.checked = template.transliterate;
  }
  if (!boot.can_write) form.querySelector('[type="submit"]').hidden = true;

  function doc() {
    const sms = f.channel.value === "sms";
    const out = {key: f.key.value || "draft", channel: f.channel.value, body: f.body.value,
                 transliterate: sms && f.transliterate.checked};
    if (f.name.value) out.name = f.name.value;
    if (!sms) out.subject = f.subject.value;
    return out;
  }

  function showChannel() {
    const sms = f.channel.value === "sms";
    document.getElementById("tpl-subject-field").hidden = sms;
    document.getElementById("tpl-translit-field").hidden = !sms;
  }

  const preview = debounce(async () => {
    if (!known.has(customer.value) || !f.body.value) return;
    try {
      const out = await api("POST", "/api/v1/templates/preview", {template: doc(), customer: customer.value});
      message(previewError, "");
      document.getElementById("preview-subject").textContent = out.subject || "";
      document.getElementById("preview-body").textContent = out.body;
      counter.textContent = out.sms_parts === null ? `${out.characters} characters`
        : `${out.characters} characters · ${out.sms_parts} SMS part${out.sms_parts === 1 ? "" : "s"} · ${out.sms_encoding}`;
    } catch (error) {
      const details = (error.details || []).map((d) => `${d.path.replace("$.template.", "")}: ${d.message}`);
      message(previewError, details.length ? details.join("; ") : error.message);
    }
  }, 350);

  form.addEventListener("input", preview);
  f.channel.addEventListener("change", () => { showChannel(); preview(); });
  customer.addEventListener("input", () => { if (known.has(customer.value)) preview(); else search(); });
  showChannel();
  preview();

  // Test send: what the preview shows, sent now to the address given (the draft as it is).
  const testForm = document.getElementById("test-send-form");
  if (testForm) {
    testForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const done = testForm.querySelector(".form-done");
      const failed = testForm.querySelector(".form-error");
      done.textContent = "";
      try {
        const out = await api("POST", "/api/v1/templates/test-send",
                              {template: doc(), customer: customer.value, to: testForm.elements.to.value});
        message(failed, out.status === "sent" ? "" : `Not sent: ${out.error}`);
        if (out.status === "sent") done.textContent = `Sent to ${out.to}.`;
      } catch (error) {
        const details = (error.details || []).map((d) => `${d.path.replace("$.", "")}: ${d.message}`);
        message(failed, details.length ? details.join("; ") : error.message);
      }
    });
  }

  nf.bindSaveForm(form, "templates", template, () => ({...doc(), key: f.key.value}));
})();
