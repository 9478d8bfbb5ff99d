"""Message templates: schema, save-time checks and sandboxed rendering.

Templates render in Jinja2's SandboxedEnvironment with StrictUndefined: a missing variable is an
error, never an empty string. At save time syntax errors, unknown variables and fields, and
attempts to reach private attributes (`''.__class__.__mro__`) are reported with line numbers.

A rendering is bounded (engine.template_bounds): numbers and strings a template builds, its
output, and its CPU time; past a bound it raises RenderLimit, at preview as at dispatch.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine.graph import KEY
from engine.segments.fields import FIELDS
from engine.template_bounds import BoundedSandbox, RenderLimit, bounded_concat

ENV = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
HTML_ENV = BoundedSandbox(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)
VARIABLES: dict[str, frozenset[str] | None] = {
    "customer": frozenset({*FIELDS, "attributes", "full_name"}),
    "invoice": frozenset({"external_id", "amount", "currency", "due_date", "paid_at",
                          "attributes"}),
    "bonus": frozenset({"amount", "expires_at", "legal_entity", "description"}),
    "campaign": frozenset({"key", "name"}),
    "today": None,
    "unsubscribe_url": None,
}


def is_html(body: str) -> bool:
    """An email body that starts with a tag is HTML (escaped when rendered)."""
    return body.lstrip().startswith("<")


def problems(source: str) -> list[str]:
    """Everything wrong with a template source, each with its line number."""
    try:
        ast = ENV.parse(source)
    except TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: {exc.message}"]
    except RecursionError:
        return ["line 1: expressions nested too deeply"]
    found: list[str] = []
    local = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in ast.find_all(nodes.Getattr):
        if node.attr.startswith("_"):
            found.append(f"line {node.lineno}: access to private attribute {node.attr!r} is "
                         "not allowed")
        elif isinstance(node.node, nodes.Name) and (known := VARIABLES.get(node.node.name)):
            if node.attr not in known:
                found.append(f"line {node.lineno}: unknown field {node.node.name}.{node.attr}")
    for item in ast.find_all(nodes.Getitem):
        if isinstance(item.arg, nodes.Const) and str(item.arg.value).startswith("_"):
            found.append(f"line {item.lineno}: access to private attribute "
                         f"{item.arg.value!r} is not allowed")
    for name in ast.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in VARIABLES and name.name not in local:
            found.append(f"line {name.lineno}: unknown variable {name.name!r} (use "
                         f"{', '.join(sorted(VARIABLES))})")
    return sorted(set(found), key=lambda p: (int(p.split(":")[0].split()[1]), p))


@lru_cache(maxsize=256)
def _compiled(source: str, html: bool) -> Template:
    return (HTML_ENV if html else ENV).from_string(source)


@lru_cache(maxsize=256)
def references(source: str) -> frozenset[tuple[str, str | None]]:
    """The (variable, attribute) pairs a template reads; (variable, None) when it uses the
    variable as a whole. Lets the dispatcher skip context nobody reads."""
    if "{" not in source:
        return frozenset()
    ast = ENV.parse(source)
    found: set[tuple[str, str | None]] = set()
    used_whole = {id(n) for n in ast.find_all(nodes.Name)}
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name):
            found.add((node.node.name, node.attr))
            used_whole.discard(id(node.node))
    for name in ast.find_all(nodes.Name):
        if id(name) in used_whole and name.ctx == "load":
            found.add((name.name, None))
    return frozenset(found)


def render(source: str, context: dict[str, Any], html: bool = False) -> str:
    """Render in the sandbox; raises jinja2's UndefinedError or SecurityError on misuse,
    RenderLimit past a bound, and whatever the data makes an expression raise (`100 // 0`).

    The context is used as it is (shared), without jinja's globals: a saved template cannot
    name anything outside VARIABLES (nor import another template), and copying the context
    and the globals' names (what `Template.new_context` does) was most of a render's cost."""
    if "{" not in source:  # plain text: nothing to render
        return source
    template = _compiled(source, html)
    env = template.environment
    return bounded_concat(template.root_render_func(
        env.context_class(env, context, template.name, template.blocks)))


def render_error(exc: BaseException) -> str:
    """What went wrong in a rendering, in words for the message's log."""
    if isinstance(exc, TemplateError | RenderLimit):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"{type(exc).__name__}: {exc}"


class TemplateSchema(Schema):
    key = fields.String(required=True, validate=KEY)
    name = fields.String(validate=validate.Length(min=1, max=200))
    channel = fields.String(required=True, validate=validate.OneOf(("email", "sms")))
    subject = fields.String(load_default=None, validate=validate.Length(max=998))
    body = fields.String(required=True, validate=validate.Length(min=1))
    transliterate = fields.Boolean(load_default=False)

    @validates_schema
    def _check(self, data: dict[str, Any], **_kw: Any) -> None:
        if data.get("channel") == "email" and not data.get("subject"):
            raise ValidationError("required for an email template", "subject")
        errors = {name: found for name in ("subject", "body")
                  if data.get(name) and (found := problems(data[name]))}
        if errors:
            raise ValidationError(errors)
