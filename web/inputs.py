"""One check in front of every route: the path, query, form and JSON body hold only values the
engine can store (engine.limits), so no NUL, lone surrogate, NaN, 65-bit number or runaway
nesting reaches a database driver and comes back as a 500."""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template, request

from engine.errors import Problem
from engine.limits import member, strict_loads, text_problem, value_problems
from web.errors import error_response
from web.webhooks import ENDPOINTS as WEBHOOKS


def _multi(location: str, pairs: Any) -> list[Problem]:
    problems = []
    for key, values in pairs:
        for text in (key, *values):
            if (why := text_problem(text)) is not None:
                problems.append(Problem(member(location, key[:100]), why))
    return problems


def request_problems() -> list[Problem]:
    """What is wrong with this request's path, query string, form and JSON body."""
    problems = []
    if (why := text_problem(request.path)) is not None:
        problems.append(Problem("path", why))
    problems += _multi("query", request.args.lists())
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        problems += _multi("form", request.form.lists())
    if request.is_json and (data := request.get_data(cache=True)):
        try:
            body = strict_loads(data)
        except ValueError as exc:
            return [*problems, Problem("$", f"the body is not valid JSON: {exc}")]
        problems += value_problems(body)
    return problems


def check_request() -> Any:
    if request.endpoint in WEBHOOKS:
        return None  # checked once the provider's signature is (web.webhooks)
    problems = request_problems()
    if not problems:
        return None
    if not request.path.startswith("/api/"):
        return render_template("error.html", title="Bad request",
                               text="; ".join(map(str, problems))), 400
    return error_response(400, "invalid_input", "the request is not valid",
                          [{"path": p.where, "message": p.message} for p in problems])


def init_app(app: Flask) -> None:
    app.before_request(check_request)
