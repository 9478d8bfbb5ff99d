// What the campaign editor knows of each node type: its id prefix, its dots (one output per
// branch for condition and split, each named by the label its edges carry), its defaults, the
// one-line summary on its box and the form that edits it in the side panel. editor.js builds
// it with nf.editorNodes({boot, editor, editable, touched}); the forms change the config they
// are given, and call touched() (or the update() editor.js hands them) after a change.
"use strict";

nf.editorNodes = ({boot, editor, editable, touched}) => {
  const {el, label} = nf;

  const TYPES = {
    "trigger": {prefix: "trigger", inputs: 0},
    "segment-select": {prefix: "segment", inputs: 1},
    "award-bonus": {prefix: "award", inputs: 1},
    "send-message": {prefix: "message", inputs: 1},
    "wait": {prefix: "wait", inputs: 1},
    "condition": {prefix: "condition", inputs: 1},
    "split": {prefix: "split", inputs: 1},
  };
  // A node's outputs in dot order: the label its edges carry, or null for the one plain output.
  function outputLabels(data) {
    if (data.type === "condition") return ["yes", "no"];
    if (data.type === "split") return (data.config.branches || []).map((b) => b.name || "");
    return [null];
  }

  function defaults(type) {
    if (type === "trigger") return {kind: "date", field: boot.date_fields[0], offset_days: 0};
    if (type === "segment-select") return boot.segments.length ? {segment: boot.segments[0].key} : {};
    if (type === "send-message") {
      return {...(boot.templates.length ? {template: boot.templates[0].key} : {channel: "email"}),
              send_at: {mode: "now"}};
    }
    if (type === "wait") return {days: 7};
    if (type === "condition") return boot.segments.length ? {segment: boot.segments[0].key} : {rules: {all: []}};
    if (type === "split") return {branches: [{name: "a", percent: 50}, {name: "b", percent: 50}]};
    return {};
  }

  function summary(type, c) {
    if (type === "trigger") {
      const shift = c.offset_days ? ` ${c.offset_days > 0 ? "+" : ""}${c.offset_days} days` : "";
      if (c.kind === "date") {
        return `${c.repeat === "once" ? "once" : "yearly"} on ${c.field ? label(c.field, "fields") : "?"}${shift}`;
      }
      if (c.kind === "event") return `on event ${c.name || "?"}${c.where ? " (where …)" : ""}`;
      if (c.kind === "invoice_due") return `invoice due${shift}`;
      if (c.kind === "schedule") {
        if (c.every === "week") return `every ${(c.weekdays || []).join(", ") || "week: pick the days"}`;
        if (c.every === "month") return `monthly on day ${c.day_of_month || "?"}`;
        return "every day";
      }
      return "run by hand";
    }
    if (type === "segment-select") return c.rules ? "inline rules" : `segment ${c.segment || "?"}`;
    if (type === "condition") return `yes if ${c.rules ? "the inline rules match" : `in segment ${c.segment || "?"}`}`;
    if (type === "wait") return `${c.days ?? "?"} day${c.days === 1 ? "" : "s"}, then on`;
    if (type === "split") return (c.branches || []).map((b) => `${b.name || "?"} ${b.percent ?? "?"}%`).join(", ");
    if (type === "award-bonus") {
      const life = c.lifetime_days ? `expires after ${c.lifetime_days} days` : "no expiry";
      const wait = c.activates_after_days ? `, pending ${c.activates_after_days} day${c.activates_after_days === 1 ? "" : "s"}` : "";
      return `${c.amount || "?"} points${wait}, ${life}`;
    }
    const template = c.template && boot.templates.find((t) => t.key === c.template);
    const what = c.template ? `${template ? template.channel : "?"} from the template` : `${c.channel || "?"} written here`;
    const when = c.send_at || {mode: "now"};
    const at = {now: "now", delay: `after ${when.hours} h`, at: `at ${when.time}`,
                datetime: `on ${when.value}`}[when.mode] || when.mode;
    return `${what}, ${at}`;
  }

  // ---- the side panel's inputs ------------------------------------------------------------
  let fieldSeq = 0;
  function field(label, input, name) {
    const id = `f${++fieldSeq}`;
    input.id = id;
    if (name) input.dataset.field = name;
    if (!editable()) input.disabled = true;
    const wrap = el("div", {class: "field"});
    if (input.type === "checkbox") wrap.append(el("label", {for: id}, input, " ", label));
    else wrap.append(el("label", {for: id}, label), input);
    return wrap;
  }

  function select_(options, value, onchange) {
    const s = el("select", {onchange: () => onchange(s.value)});
    for (const [v, text] of options) s.append(el("option", {value: v}, text));
    s.value = value === undefined || value === null ? "" : String(value);
    return s;
  }

  function number(value, onchange, attrs) {
    const input = el("input", {type: "number", step: 1, ...attrs, value: value ?? ""});
    input.addEventListener("input", () => onchange(input.value === "" ? undefined : Number(input.value)));
    return input;
  }

  function text(value, onchange, attrs) {
    const input = el(attrs && attrs.rows ? "textarea" : "input", {...attrs, value: value ?? ""});
    input.addEventListener("input", () => onchange(input.value === "" ? undefined : input.value));
    return input;
  }

  const FORMS = {
    "trigger": (c, put, update) => {
      const kind = update((v) => {
        for (const k of Object.keys(c)) delete c[k];
        Object.assign(c, {kind: v}, v === "date" ? {field: boot.date_fields[0], offset_days: 0} :
          v === "invoice_due" ? {offset_days: 0} : v === "schedule" ? {every: "day"} :
          v === "event" ? {name: ""} : {});
      }, true);
      const rows = [field("Fires", select_([["date", "on a date (birthday, anniversary, end date)"],
        ["invoice_due", "for each unpaid invoice by due date"], ["schedule", "on a schedule"],
        ["event", "for each event posted (API or import events)"],
        ["manual", "only when run by hand"]], c.kind, kind), "kind")];
      if (c.kind === "event") {
        rows.push(field("Event name", text(c.name, put("name"), {maxlength: 100, required: true}), "name"));
        rows.push(rulesField("Only events where (rules, JSON; empty = every event)", c.where,
          (v) => { if (v === undefined) delete c.where; else c.where = v; }, "where", true));
        rows.push(el("p", {class: "hint"}, "The rules may read event.properties.NAME and customer fields."));
      }
      if (c.kind === "date") {
        const imported = (c.field || "").startsWith("attributes.");
        rows.push(field("Date field", select_(
          [...boot.date_fields.map((f) => [f, label(f, "fields")]), ["attributes.", "an imported date column (attributes.…)"]],
          imported ? "attributes." : c.field, put("field", true)), "field"));
        if (imported) {
          rows.push(field("Column name (its values are YYYY-MM-DD dates)",
            text(c.field.slice("attributes.".length), (v) => { c.field = `attributes.${v ?? ""}`; touched(); }),
            "field"));
        }
        rows.push(field("Repeat", select_([["yearly", "every year (the anniversary)"],
          ["once", "once (the date itself)"]], c.repeat || "yearly", put("repeat")), "repeat"));
      }
      if (c.kind === "date" || c.kind === "invoice_due") {
        rows.push(field("Offset in days (negative = before)",
                        number(c.offset_days, put("offset_days"), {min: -366, max: 366}), "offset_days"));
      }
      if (c.kind === "schedule") {
        rows.push(field("Every", select_([["day", "day"], ["week", "week"], ["month", "month"]], c.every,
          update((v) => { c.every = v; delete c.weekdays; delete c.day_of_month;
                          if (v === "month") c.day_of_month = 1; }, true)), "every"));
        if (c.every === "week") {
          const days = el("fieldset", {"data-field": "weekdays"}, el("legend", {}, "Weekdays"));
          for (const day of boot.weekdays) {
            const box = el("input", {type: "checkbox", value: day, checked: (c.weekdays || []).includes(day),
                                     disabled: !editable()});
            // No day is ticked for the user: saving with none is an error on this node.
            box.addEventListener("change", () => {
              c.weekdays = boot.weekdays.filter((d) => days.querySelector(`input[value="${d}"]`).checked);
              if (!c.weekdays.length) delete c.weekdays;
              touched();
            });
            days.append(el("label", {class: "inline"}, box, ` ${day}`));
          }
          rows.push(days);
        }
        if (c.every === "month") {
          rows.push(field("Day of month (31 = last day)", number(c.day_of_month, put("day_of_month"), {min: 1, max: 31}), "day_of_month"));
        }
      }
      return rows;
    },
    "segment-select": (c, put, update) => segmentOrRules("Keep customers in", c, put, update),
    "condition": (c, put, update) => [
      ...segmentOrRules("Yes for customers in", c, put, update),
      el("p", {class: "hint"}, "Checked on the day a customer arrives: the yes dot passes those who match, " +
         "the no dot the others. Invoice campaigns may read invoice.paid, invoice.days_past_due, invoice.amount."),
    ],
    "wait": (c, put) => [
      field("Days to wait (1-365)", number(c.days, put("days"), {min: 1, max: 365, required: true}), "days"),
      el("p", {class: "hint"}, "Customers go on in the run of the day that many days later; the campaign's " +
         "exit rules can take them out before."),
    ],
    "split": (c, put, update, id) => splitForm(c, update, id),
    "award-bonus": (c, put) => [
      field("Points", number(c.amount, put("amount"), {min: 1, required: true}), "amount"),
      field("Pending for days (empty = available at once)", number(c.activates_after_days, put("activates_after_days"), {min: 0}), "activates_after_days"),
      field("Lifetime in days (empty = never expires)", number(c.lifetime_days, put("lifetime_days"), {min: 1}), "lifetime_days"),
      el("p", {class: "hint"}, "Pending points cannot be redeemed; the lifetime counts from the day they become available."),
      field("Legal entity", text(c.legal_entity, put("legal_entity")), "legal_entity"),
      field("Description (shown in the balance)", text(c.description, put("description")), "description"),
    ],
    "send-message": (c, put, update) => {
      const inline = !c.template;
      const rows = [field("Content", select_([["template", "a saved template"], ["inline", "written here"]],
        inline ? "inline" : "template", update((v) => {
          delete c.template; delete c.channel; delete c.subject; delete c.body; delete c.transliterate;
          if (v === "template") c.template = boot.templates.length ? boot.templates[0].key : ""; else c.channel = "email";
        }, true)), "content")];
      if (!inline) {
        rows.push(field("Template", select_(boot.templates.map((t) => [t.key, `${t.name || t.key} (${t.channel})`]),
                                            c.template, update((v) => {
          c.template = v;
          const chosen = boot.templates.find((t) => t.key === v);
          if (!chosen || chosen.channel !== "email") delete c.tracking;
        }, true)), "template"));
      } else {
        rows.push(field("Channel", select_([["email", "email"], ["sms", "sms"]], c.channel,
          update((v) => { c.channel = v; delete c.transliterate; delete c.tracking; }, true)), "channel"));
        if (c.channel === "email") rows.push(field("Subject", text(c.subject, put("subject")), "subject"));
        rows.push(field("Body", text(c.body, put("body"), {rows: 5}), "body"));
        if (c.channel === "sms") {
          const box = el("input", {type: "checkbox", checked: Boolean(c.transliterate)});
          box.addEventListener("change", () => put("transliterate")(box.checked || undefined));
          rows.push(field("Transliterate to plain Latin letters (keeps GSM-7, cheaper parts)", box, "transliterate"));
        }
      }
      // Changing the sender or reply-to needs the senders.edit permission (the API checks it).
      const senders = boot.can_edit_senders ? {} : {disabled: true, title: "needs the senders.edit permission"};
      rows.push(field("Reply-to (empty = workspace default)", text(c.reply_to, put("reply_to"), {type: "email", ...senders}), "reply_to"));
      rows.push(field("Sender", text(c.sender, put("sender"), senders), "sender"));
      const template = !inline && boot.templates.find((t) => t.key === c.template);
      if ((inline ? c.channel : template && template.channel) === "email") {
        // Open and click tracking (SendGrid's); off unless asked.
        const setTracking = put("tracking");
        for (const [name, label] of [["opens", "Track opens"], ["clicks", "Track link clicks"]]) {
          const box = el("input", {type: "checkbox", checked: Boolean(c.tracking && c.tracking[name])});
          box.addEventListener("change", () => {
            const now = {...(c.tracking || {})};
            if (box.checked) now[name] = true; else delete now[name];
            setTracking(Object.keys(now).length ? now : undefined);
          });
          rows.push(field(label, box, `tracking.${name}`));
        }
      }
      const when = c.send_at || (c.send_at = {mode: "now"});
      rows.push(field("Send", select_([["now", "as soon as possible"], ["delay", "after a delay"],
        ["at", "at a time of day"], ["datetime", "at a date and time"]], when.mode,
        update((v) => { c.send_at = {mode: v, ...(v === "delay" ? {hours: 2} : v === "at" ? {time: "09:30"} : {})}; }, true)), "send_at"));
      const setWhen = (name) => (v) => { if (v === undefined) delete c.send_at[name]; else c.send_at[name] = v; touched(); };
      if (when.mode === "delay") rows.push(field("Delay in hours", number(when.hours, setWhen("hours"), {min: 1, max: 336}), "hours"));
      if (when.mode === "at") rows.push(field("Time of day (campaign time zone)", text(when.time, setWhen("time"), {type: "time"}), "time"));
      if (when.mode === "datetime") {
        rows.push(field("Date and time (UTC, at most 14 days after the run)",
          text((when.value || "").slice(0, 16), (v) => setWhen("value")(v && `${v}:00+00:00`), {type: "datetime-local"}), "value"));
      }
      // Quiet hours: absent = the workspace's default for the channel, null = none.
      const quiet = !("quiet_hours" in c) ? "default" : c.quiet_hours === null ? "none" : "window";
      rows.push(field("Quiet hours (customer's time zone)", select_([["default", "the workspace default"],
        ["none", "none"], ["window", "from ... until ..."]], quiet, update((v) => {
          if (v === "default") delete c.quiet_hours;
          else c.quiet_hours = v === "none" ? null : {start: "21:00", end: "08:00"};
        }, true)), "quiet_hours"));
      if (quiet === "window") {
        const setQuiet = (name) => (v) => { c.quiet_hours[name] = v; touched(); };
        rows.push(field("Quiet from", text(c.quiet_hours.start, setQuiet("start"), {type: "time"}), "start"));
        rows.push(field("Quiet until", text(c.quiet_hours.end, setQuiet("end"), {type: "time"}), "end"));
      }
      const caps = el("input", {type: "checkbox", checked: Boolean(c.ignore_caps)});
      caps.addEventListener("change", () => put("ignore_caps")(caps.checked || undefined));
      rows.push(field("Ignore frequency caps (service messages)", caps, "ignore_caps"));
      return rows;
    },
  };

  // A saved segment or inline rules (segment-select and condition).
  function segmentOrRules(prompt, c, put, update) {
    const source = c.rules ? "rules" : "segment";
    const rows = [field(prompt, select_([["segment", "a saved segment"], ["rules", "inline rules (JSON)"]],
      source, update((v) => {
        delete c.segment; delete c.rules;
        if (v === "rules") c.rules = {all: []}; else if (boot.segments.length) c.segment = boot.segments[0].key;
      }, true)), "source")];
    if (source === "segment") {
      const options = boot.segments.map((s) => [s.key, `${s.name} (${s.key})`]);
      if (!c.segment) options.unshift(["", "choose a segment"]);
      rows.push(field("Segment", select_(options, c.segment, put("segment")), "segment"));
      rows.push(el("p", {class: "hint"}, el("a", {href: "/segments/new", target: "_blank"}, "Build a new segment")));
    } else {
      rows.push(rulesField("Rules", c.rules, (v) => { c.rules = v ?? {all: []}; }, "rules"));
    }
    return rows;
  }

  // Rules as JSON in a text area; text that does not parse is marked and not kept. Empty is
  // undefined where `optional` (the rules are left out), else refused like bad JSON.
  function rulesField(name, value, onchange, key, optional) {
    const area = el("textarea", {rows: 8, spellcheck: "false", value: value ? JSON.stringify(value, null, 2) : ""});
    area.addEventListener("input", () => {
      try {
        const parsed = area.value.trim() === "" && optional ? undefined : JSON.parse(area.value);
        onchange(parsed);
        area.removeAttribute("aria-invalid");
        touched();
      } catch (_e) { area.setAttribute("aria-invalid", "true"); }
    });
    return field(name, area, key);
  }

  // Branches: name and percent each, added and removed with their dots; the sum is checked here
  // and again by the server.
  function splitForm(c, update, id) {
    const branches = c.branches || (c.branches = []);
    const changedBranches = (structural) => {
      update(() => {}, structural)();
      if (!structural) showSum();
    };
    const box = el("fieldset", {"data-field": "branches"}, el("legend", {}, "Branches"));
    branches.forEach((b, i) => {
      const row = el("div", {class: "branch-row"},
        field(`Branch ${i + 1} name`, text(b.name, (v) => { b.name = v ?? ""; changedBranches(false); },
                                           {pattern: "[a-z0-9_\\-]{1,32}", maxlength: 32, required: true})),
        field(`Branch ${i + 1} percent`, number(b.percent, (v) => { b.percent = v; changedBranches(false); },
                                                {min: 1, max: 99, required: true})));
      if (editable() && branches.length > 2) {
        row.append(el("button", {type: "button", class: "link", "aria-label": `Remove branch ${i + 1}`, onclick: () => {
          editor.removeNodeOutput(id, `output_${i + 1}`);   // its lines go with it
          branches.splice(i, 1);
          changedBranches(true);
        }}, "remove"));
      }
      box.append(row);
    });
    const sum = el("p", {class: "branch-sum", "aria-live": "polite"});
    const showSum = () => {
      const total = branches.reduce((t, b) => t + (Number.isInteger(b.percent) ? b.percent : 0), 0);
      const whole = branches.every((b) => Number.isInteger(b.percent) && b.percent >= 1 && b.percent <= 99);
      sum.textContent = `Total ${total}%` + (total === 100 && whole ? ""
        : ": each branch takes a whole percent from 1 to 99, and they add up to 100");
      sum.classList.toggle("field-error", total !== 100 || !whole);
    };
    showSum();
    box.append(sum);
    if (editable() && branches.length < 10) {
      box.append(el("button", {type: "button", onclick: () => {
        const taken = new Set(branches.map((b) => b.name));
        const name = "abcdefghij".split("").find((n) => !taken.has(n)) || `b${branches.length + 1}`;
        branches.push({name, percent: 0});
        editor.addNodeOutput(id);
        changedBranches(true);
      }}, "Add branch"));
    }
    return [box, el("p", {class: "hint"}, "Each customer always lands on the same branch (a stable hash), " +
                    "in runs and previews alike. Connect each branch's dot on the node.")];
  }

  return {TYPES, outputLabels, defaults, summary, FORMS, field, select_, number, text, rulesField};
};
