"""Server-rendered pages: the campaign editor and the pages around it.

Pages read through the engine; every write goes through the JSON API (one path, one
validation, one error shape), called by small scripts with the session's CSRF token.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from engine.graph import KEY_PATTERN
from engine.labels import LABELS, label
from engine.runlog import figures


def node_counts(counts: dict[str, Any] | None, titles: dict[str, str] | None = None) -> str:
    """A run's figures, node by node, each node by its title (web/pages/titles.py) when known."""
    return "; ".join(f"{(titles or {}).get(node, node)}: {figures(c)}"
                     for node, c in (counts or {}).items())


def init_app(app: Flask) -> None:
    from web.pages import (
        admin,
        blasts,
        campaigns,
        customers,
        messages,
        reports,
        runs,
        segments,
        templates,
    )

    for module in (campaigns, segments, templates, customers, messages, runs, blasts, reports,
                   admin):
        app.register_blueprint(module.bp)
    app.add_template_filter(figures)
    app.add_template_filter(node_counts)
    app.add_template_filter(label)
    app.jinja_env.globals.update(labels=LABELS, key_pattern=KEY_PATTERN)
