"""Who may do what. Secure by default: one gate in front of every route checks the login
(session or bearer token) and the permission the route needs (web.permissions), so a new route
cannot forget to: an endpoint missing from the map is refused.

A user holds one role, a named set of permissions (engine.access): viewer reads and exports;
marketer also edits and runs campaigns, segments and templates, cancels and imports; admin
holds every permission, including settings, users, roles and tokens; admins add custom roles.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.security import check_password_hash

from engine.access.roles import effective
from engine.db import write_transaction
from engine.models import ApiToken, LoginFailure, Role, User
from engine.models.base import utcnow
from engine.users import hash_token
from web.errors import error_response
from web.permissions import LOGGED_IN, Forbidden, needed

# No login: these are authenticated by a signed token (unsubscribe), the provider's
# signature (web.webhooks) or their own check (web.ops.metrics: a token with settings.manage or
# NUDGEFLOW_METRICS_TOKEN), or show nothing private (web.ops.healthz).
PUBLIC_ENDPOINTS = {"auth.login", "unsubscribe.unsubscribe", "ops.healthz", "ops.metrics",
                    "static", "webhooks.sendgrid_events", "webhooks.twilio_status",
                    "webhooks.twilio_inbound"}
FAILED_LOGIN_LIMIT, FAILED_LOGIN_WINDOW = 5, 15 * 60
TOKEN_USE_GRANULARITY = timedelta(minutes=1)  # how stale api_tokens.last_used_at may be
log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()


class Account(UserMixin):
    def __init__(self, user_id: int, name: str, role: str, stored: Any) -> None:
        self.id, self.name, self.role = user_id, name, role
        self.permissions = effective(role, stored)

    def can(self, permission: str) -> bool:
        return permission == LOGGED_IN or permission in self.permissions


# The user with their role's stored permissions, in one query.
ACCOUNT = (User.id, User.name, User.role, Role.permissions)


def _engine() -> Any:
    return current_app.extensions["nudgeflow_engine"]


@login_manager.user_loader
def _load_user(user_id: str) -> Account | None:
    with _engine().connect() as conn:
        row = conn.execute(select(*ACCOUNT).join(Role, Role.name == User.role)
                           .where(User.id == int(user_id))).first()
    return Account(*row) if row else None


@login_manager.request_loader
def _load_from_token(req: Any) -> Account | None:
    header = req.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    digest = hash_token(header.removeprefix("Bearer ").strip())
    with _engine().connect() as conn:
        row = conn.execute(select(*ACCOUNT, ApiToken.id.label("tid"), ApiToken.last_used_at)
                           .join(Role, Role.name == User.role)
                           .join(ApiToken, ApiToken.user_id == User.id)
                           .where(ApiToken.token_hash == digest)).first()
    if row is None:
        return None
    if row.last_used_at is None or row.last_used_at < utcnow() - TOKEN_USE_GRANULARITY:
        _note_token_use(row.tid)
    g.token_auth = True
    return Account(row.id, row.name, row.role, row.permissions)


def _note_token_use(token_id: int) -> None:
    """Record when a token was last used, at most once a minute: a read must not queue behind
    writers for bookkeeping on every request, and never fails because of it (on SQLite a
    read transaction upgraded to a write failed at once with "database is locked")."""
    now = utcnow()
    try:
        with write_transaction(_engine()) as conn:
            conn.execute(update(ApiToken).where(
                ApiToken.id == token_id,
                or_(ApiToken.last_used_at.is_(None),
                    ApiToken.last_used_at < now - TOKEN_USE_GRANULARITY))
                .values(last_used_at=now))
    except SQLAlchemyError as exc:
        log.warning("could not record the use of API token %s: %s", token_id, exc)


def forbidden(permission: str | None) -> Any:
    """403: a JSON error naming the missing permission under /api/, else the error page."""
    if permission is None:
        text = f"{request.method} {request.path} is not open to any role"
    else:
        text = (f"this needs the {permission} permission; your role {current_user.role} "
                "does not have it")
    if request.path.startswith("/api/"):
        return error_response(403, "forbidden", text,
                              [{"path": "permission", "message": permission or "(none)"}])
    return render_template("error.html", title="Not allowed", text=text), 403


def gate() -> Any:
    """Runs before every request: login, permission, and CSRF for session-authenticated
    writes."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        if request.endpoint == "auth.login" and request.method == "POST":
            csrf.protect()
        return None
    api = request.path.startswith("/api/")
    if not current_user.is_authenticated:
        if api:
            return error_response(401, "unauthorized",
                                  "log in or send Authorization: Bearer <token>")
        return redirect(url_for("auth.login", next=request.path))
    if not g.get("token_auth") and request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    if request.routing_exception is not None:
        return None  # no such page or method: Flask answers 404 or 405
    permission = needed(request.endpoint or "", request.method)
    if permission is None or not current_user.can(permission):
        return forbidden(permission)
    return None


def _key(name: str) -> tuple[str, str]:
    return name[:100], (request.remote_addr or "-")[:64]


def _too_many(name: str) -> bool:
    """Failed logins per (name, address) in the window, counted in the database so every
    web process sees the same attempts."""
    who, address = _key(name)
    since = utcnow() - timedelta(seconds=FAILED_LOGIN_WINDOW)
    with _engine().connect() as conn:
        failed = conn.execute(select(func.count()).select_from(LoginFailure).where(
            LoginFailure.name == who, LoginFailure.address == address,
            LoginFailure.at > since)).scalar_one()
    return int(failed) >= FAILED_LOGIN_LIMIT


def _remember_failure(name: str) -> None:
    who, address = _key(name)
    now = utcnow()
    with write_transaction(_engine()) as conn:
        conn.execute(delete(LoginFailure).where(
            LoginFailure.at <= now - timedelta(seconds=FAILED_LOGIN_WINDOW)))
        conn.execute(insert(LoginFailure).values(name=who, address=address, at=now))


def _forget_failures(name: str) -> None:
    who, address = _key(name)
    with write_transaction(_engine()) as conn:
        conn.execute(delete(LoginFailure).where(LoginFailure.name == who,
                                                LoginFailure.address == address))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        name = request.form.get("name", "")
        if _too_many(name):
            return render_template("login.html", error="Too many failed attempts; "
                                   "try again in 15 minutes."), 429
        with _engine().connect() as conn:
            row = conn.execute(select(*ACCOUNT, User.password_hash)
                               .join(Role, Role.name == User.role)
                               .where(User.name == name)).first()
        if row and check_password_hash(row.password_hash, request.form.get("password", "")):
            _forget_failures(name)
            login_user(Account(row.id, row.name, row.role, row.permissions))
            return redirect(local_target(request.args.get("next")))
        _remember_failure(name)
        error = "Unknown name or wrong password."
    return render_template("login.html", error=error), 401 if error else 200


def local_target(target: str | None) -> str:
    """Where to go after login: `target` if it is a path on this site, else "/". Refused:
    anything a browser could read as another site (a scheme, a host, `//`, a backslash,
    which browsers read as a slash) and control characters or whitespace, which browsers
    strip (`/%09/evil.example` becomes `//evil.example`); also once percent-decoded."""
    if not target:
        return "/"
    for text in (target, unquote(target)):
        parts = urlsplit(text)
        if (not text.startswith("/") or text.startswith("//") or "\\" in text
                or parts.scheme or parts.netloc
                or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text)):
            return "/"
    return target


@bp.get("/")
def home() -> Any:
    """The landing page after login: the campaigns."""
    return redirect(url_for("campaign_pages.index"))


@bp.post("/logout")
def logout() -> Any:
    logout_user()
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    login_manager.init_app(app)
    csrf.init_app(app)
    app.before_request(gate)
    app.register_blueprint(bp)

    @app.errorhandler(Forbidden)
    def _forbidden(exc: Forbidden) -> Any:
        return forbidden(exc.permission)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        return error_response(400, "csrf", exc.description)
