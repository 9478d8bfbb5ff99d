// The segment builder: rule rows inside all/any/none groups, turned into the rule JSON the
// engine validates, with a live count (debounced) from /api/v1/segments/preview.
"use strict";

(() => {
  const {api, el, debounce, label} = nf;
  const boot = nf.boot();
  const form = document.getElementById("segment-form");
  const fieldTypes = Object.fromEntries(boot.fields.map((f) => [f.name, f.type]));
  const ATTRIBUTE = "attributes.", SEGMENT = "$segment";
  const GROUPS = [["all", "all of"], ["any", "any of"], ["none", "none of"]];
  const NO_VALUE = new Set(["is_null", "not_null"]);
  const LISTS = new Set(["in", "not_in"]);
  let seq = 0;

  // ---- rule JSON <-> builder tree ----------------------------------------------------------
  function toTree(rule) {
    if (rule.all) return {group: "all", children: rule.all.map(toTree)};
    if (rule.any) return {group: "any", children: rule.any.map(toTree)};
    if (rule.not) {
      const inner = rule.not.any ? rule.not.any : [rule.not];
      return {group: "none", children: inner.map(toTree)};
    }
    if (rule.segment) return {segment: rule.segment};
    const attr = rule.field.startsWith(ATTRIBUTE);
    return {field: attr ? ATTRIBUTE : rule.field, attribute: attr ? rule.field.slice(ATTRIBUTE.length) : "",
            attrType: attr ? attrType(rule.value) : null, op: rule.op, value: rule.value};
  }

  function attrType(value) {
    const v = Array.isArray(value) ? value[0] : value;
    if (typeof v === "number") return "number";
    if (typeof v === "boolean") return "bool";
    return "string";
  }

  function toRules(node) {
    if (node.group) {
      const children = node.children.map(toRules);
      return node.group === "none" ? {not: {any: children}} : {[node.group]: children};
    }
    if (node.segment !== undefined) return {segment: node.segment};
    const field = node.field === ATTRIBUTE ? `${ATTRIBUTE}${node.attribute}` : node.field;
    return NO_VALUE.has(node.op) ? {field, op: node.op} : {field, op: node.op, value: node.value};
  }

  const typeOf = (node) => (node.field === ATTRIBUTE ? node.attrType : fieldTypes[node.field]);

  // ---- rendering --------------------------------------------------------------------------
  function labelled(label, input) {
    input.id = `r${++seq}`;
    if (!boot.can_write) input.disabled = true;
    return el("span", {class: "rule-part"}, el("label", {for: input.id, class: "sr-only"}, label), input);
  }

  function choice(options, value, onchange) {
    const s = el("select", {onchange: () => onchange(s.value)});
    for (const [v, text] of options) s.append(el("option", {value: v}, text));
    s.value = value ?? "";
    return s;
  }

  function cast(type, raw) {
    if (type === "int" || type === "number") return raw === "" ? null : Number(raw);
    if (type === "bool") return raw === "true";
    return raw;
  }

  function valueInputs(node) {
    const type = typeOf(node);
    if (!type || NO_VALUE.has(node.op)) return [];
    const kind = type === "date" ? "date" : type === "int" || type === "number" ? "number" : "text";
    if (type === "bool") {
      return [labelled("Value", choice([["true", "yes"], ["false", "no"]], String(node.value ?? true),
                                       (v) => { node.value = v === "true"; changed(); }))];
    }
    if (node.op === "between") {
      const pair = Array.isArray(node.value) ? node.value : [null, null];
      node.value = pair;
      return [0, 1].map((i) => {
        const input = el("input", {type: kind, value: pair[i] ?? "", step: "any"});
        input.addEventListener("input", () => { pair[i] = cast(type, input.value); changed(); });
        return labelled(i ? "To" : "From", input);
      });
    }
    if (LISTS.has(node.op)) {
      const input = el("input", {type: "text", value: (Array.isArray(node.value) ? node.value : []).join(", "),
                                 placeholder: "comma separated"});
      input.addEventListener("input", () => {
        node.value = input.value.split(",").map((v) => v.trim()).filter(Boolean).map((v) => cast(type, v));
        changed();
      });
      return [labelled("Values", input)];
    }
    const input = el("input", {type: kind, value: node.value ?? "", step: "any"});
    input.addEventListener("input", () => { node.value = cast(type, input.value); changed(); });
    return [labelled("Value", input)];
  }

  function fieldOptions() {
    return [["", "choose a field"], ...boot.fields.map((f) => [f.name, label(f.name, "fields")]),
            [ATTRIBUTE, "attributes.… (imported column)"], [SEGMENT, "in segment…"]];
  }

  function conditionRow(node, parent) {
    const row = el("div", {class: "rule"});
    const remove = el("button", {type: "button", class: "link", onclick: () => {
      parent.children.splice(parent.children.indexOf(node), 1); rerender(); }}, "remove");
    if (node.segment !== undefined) {
      row.append(labelled("Field", choice(fieldOptions(), SEGMENT, (v) => retype(node, v))),
                 labelled("Segment", choice([["", "choose"], ...boot.segments.map((k) => [k, k])], node.segment,
                                            (v) => { node.segment = v; changed(); })));
    } else {
      row.append(labelled("Field", choice(fieldOptions(), node.field, (v) => retype(node, v))));
      if (node.field === ATTRIBUTE) {
        const name = el("input", {type: "text", value: node.attribute, placeholder: "attribute name"});
        name.addEventListener("input", () => { node.attribute = name.value; changed(); });
        row.append(labelled("Attribute", name), labelled("Attribute type", choice(
          [["string", "text"], ["number", "number"], ["bool", "yes/no"]], node.attrType,
          (v) => { node.attrType = v; node.value = null; rerender(); })));
      }
      const type = typeOf(node);
      if (type) {
        row.append(labelled("Operator", choice(boot.ops[type].map((o) => [o, o.replace("_", " ")]), node.op,
          (v) => { node.op = v; node.value = null; rerender(); })));
        row.append(...valueInputs(node));
      }
    }
    if (boot.can_write) row.append(remove);
    return row;
  }

  function retype(node, field) {
    for (const k of Object.keys(node)) delete node[k];
    if (field === SEGMENT) node.segment = boot.segments[0] || "";
    else Object.assign(node, {field, attribute: "", attrType: field === ATTRIBUTE ? "string" : null,
                              op: field ? boot.ops[field === ATTRIBUTE ? "string" : fieldTypes[field]][0] : "",
                              value: null});
    rerender();
  }

  function groupBox(node, parent) {
    const box = el("fieldset", {class: "group"});
    box.append(el("legend", {}, labelled("Match", choice(GROUPS, node.group, (v) => { node.group = v; changed(); })),
                  " these rules"));
    for (const child of node.children) box.append(child.group ? groupBox(child, node) : conditionRow(child, node));
    if (boot.can_write) {
      box.append(el("div", {class: "group-actions"},
        el("button", {type: "button", onclick: () => { node.children.push({field: "", op: "", value: null}); rerender(); }},
           "Add condition"),
        el("button", {type: "button", onclick: () => { node.children.push({group: "any", children: []}); rerender(); }},
           "Add group"),
        parent ? el("button", {type: "button", class: "link", onclick: () => {
          parent.children.splice(parent.children.indexOf(node), 1); rerender(); }}, "remove group") : null));
    }
    return box;
  }

  // ---- live count -------------------------------------------------------------------------
  const countBox = document.getElementById("seg-count");
  const countLabel = document.getElementById("seg-count-label");
  const sample = document.getElementById("seg-sample");
  const dateInput = document.getElementById("seg-date");

  const complete = (node) => (node.group ? node.children.every(complete)
    : node.segment !== undefined ? !!node.segment : !!node.field && !!node.op);

  const count = debounce(async () => {
    if (!complete(tree)) { countLabel.textContent = "finish the rules to see a count"; return; }
    try {
      const answer = await api("POST", "/api/v1/segments/preview",
                               {rules: toRules(tree), date: dateInput.value || null, limit: 5});
      countBox.textContent = answer.count;
      countLabel.textContent = `customer${answer.count === 1 ? "" : "s"} match on ${answer.as_of}`;
      sample.replaceChildren(...answer.sample.map((c) => el("li", {},
        el("a", {href: `/customers/${encodeURIComponent(c.external_id)}`}, c.external_id),
        ` ${c.first_name || ""} ${c.last_name || ""}`)));
    } catch (error) {
      countBox.textContent = "–";
      countLabel.textContent = (error.details || []).map((d) => `${d.path}: ${d.message}`).join("; ") || error.message;
      sample.replaceChildren();
    }
  }, 400);

  function changed() { count(); }
  function rerender() { document.getElementById("rules").replaceChildren(groupBox(tree, null)); count(); }
  dateInput.addEventListener("change", count);

  // ---- load and save ----------------------------------------------------------------------
  const segment = boot.segment;
  let tree = segment ? toTree(segment.rules) : {group: "all", children: [{field: "", op: "", value: null}]};
  if (!tree.group) tree = {group: "all", children: [tree]};
  form.elements.name.value = segment ? segment.name : "";
  form.elements.key.value = segment ? segment.key : "";
  form.elements.key.readOnly = !!segment;
  if (!boot.can_write) document.getElementById("seg-save").hidden = true;
  rerender();

  nf.bindSaveForm(form, "segments", segment,
                  () => ({key: form.elements.key.value, name: form.elements.name.value, rules: toRules(tree)}));
})();
