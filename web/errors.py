"""One error shape for every API answer: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Flask, current_app, jsonify, render_template, request
from flask_login import current_user
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from engine.errors import (
    AlreadyExists,
    Conflict,
    InUse,
    NotFound,
    NudgeflowError,
    PrunedDate,
    ValidationError,
    flatten_messages,
)


class ErrorBody(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "machine-readable code"})
    message = ma.fields.String(required=True)
    details = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "one entry per problem: {path, message}"})


class ErrorSchema(ma.Schema):
    error = ma.fields.Nested(ErrorBody, required=True)


def error_response(status: int, code: str, message: str,
                   details: list[dict[str, str]] | None = None) -> tuple[Any, int]:
    return jsonify({"error": {"code": code, "message": message,
                              "details": details or []}}), status


class NudgeflowApi(Api):
    """flask-smorest's Api with our error shape (also documented in the OpenAPI file)."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        data = getattr(error, "data", None) or {}
        messages = data.get("messages") or data.get("errors")
        details = []
        if messages:
            # webargs nests by location ("json", "query"); the path starts at the document.
            for location, inner in (messages.items() if isinstance(messages, dict) else []):
                prefix = "$" if location == "json" else location
                details += [{"path": p, "message": m} for p, m in flatten_messages(inner, prefix)]
        code = (error.name or "error").lower().replace(" ", "_")
        message = data.get("message") or error.description or error.name
        if details:
            code, message = "invalid_input", "the request is not valid"
        response, status = error_response(error.code or 500, code, message, details)
        for key, value in (data.get("headers") or {}).items():
            response.headers[key] = value
        return response, status


def register(app: Flask) -> None:
    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> Any:
        return error_response(400, "invalid_input", exc.title,
                              [{"path": p.where, "message": p.message} for p in exc.problems])

    @app.errorhandler(NotFound)
    def _missing(exc: NotFound) -> Any:
        if not request.path.startswith("/api/"):
            return render_template("error.html", title="Not found", text=str(exc)), 404
        return error_response(404, "not_found", str(exc))

    @app.errorhandler(AlreadyExists)
    def _exists(exc: AlreadyExists) -> Any:
        return error_response(409, "already_exists", str(exc))

    @app.errorhandler(Conflict)
    def _conflict(exc: Conflict) -> Any:
        return error_response(409, exc.code, str(exc),
                              [{"path": p.where, "message": p.message} for p in exc.problems])

    @app.errorhandler(InUse)
    def _in_use(exc: InUse) -> Any:
        return error_response(409, "in_use", str(exc))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Any:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        text = (f"the request body is larger than {limit // (1024 * 1024)} MB "
                f"(NUDGEFLOW_MAX_REQUEST_MB); send bulk records in smaller batches")
        if request.path.startswith("/api/"):
            return error_response(413, "too_large", text)
        if current_user.is_authenticated:
            return render_template("error.html", title="Too large", text=text), 413
        return text, 413, {"Content-Type": "text/plain; charset=utf-8"}

    @app.errorhandler(PrunedDate)
    def _pruned(exc: PrunedDate) -> Any:
        return error_response(409, "pruned", str(exc))

    @app.errorhandler(NudgeflowError)
    def _other(exc: NudgeflowError) -> Any:
        return error_response(400, "bad_request", str(exc))

