"""Which permission each route needs: one map from Flask endpoint to permission, read by the
gate in web.auth before every request.

An endpoint that is not here is refused (403) to every logged-in user, so a new route cannot
forget its check: add one line, `"blueprint.Endpoint": "permission"`, or a dict by HTTP method
when reads and writes differ. HEAD reads as GET; OPTIONS needs only a login. Finer checks that
depend on the request body or on what is shown (a send node's sender, contact details) call
`require(...)` or `can(...)` in the handler.
"""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from engine.access.permissions import PERMISSIONS

LOGGED_IN = ""  # any logged-in user, whatever their role
READ_WRITE = dict[str, str]

ENDPOINTS: dict[str, str | READ_WRITE] = {
    "auth.home": "view",
    "auth.logout": LOGGED_IN,
    "api-docs.openapi_json": "view",
    # API: campaigns
    "campaigns.Campaigns": {"GET": "view", "POST": "campaigns.edit"},
    "campaigns.CampaignItem": {"GET": "view", "PUT": "campaigns.edit"},
    "campaigns.Validate": "campaigns.edit",
    "campaigns.Preview": "campaigns.edit",
    "campaigns.Versions": "view",
    "campaigns.Version": "view",
    "campaigns.CampaignActivate": "campaigns.run",
    "campaigns.CampaignPause": "campaigns.run",
    "campaigns.CampaignArchive": "campaigns.run",
    "campaigns.RunNow": "campaigns.run",
    # API: segments and data sets
    "segments.Segments": {"GET": "view", "POST": "campaigns.edit"},
    "segments.SegmentItem": {"GET": "view", "PUT": "campaigns.edit", "DELETE": "campaigns.edit"},
    "segments.Preview": "campaigns.edit",
    "segments.Export": "data.export",
    "segments.Dataset": "view",
    "segments.DatasetCsv": "data.export",
    "segments.DatasetXlsx": "data.export",
    "column_sets.ColumnSets": "view",
    "column_sets.OneColumnSet": {"GET": "view", "PUT": "campaigns.edit",
                                 "DELETE": "campaigns.edit"},
    # API: templates
    "templates.Templates": {"GET": "view", "POST": "templates.edit"},
    "templates.TemplateItem": {"GET": "view", "PUT": "templates.edit",
                               "DELETE": "templates.edit"},
    "templates.Preview": "templates.edit",
    "templates.DraftPreview": "templates.edit",
    "templates.TestSend": "templates.edit",
    "templates.DraftTestSend": "templates.edit",
    # API: customers, records and events
    "customers.Customers": "view",
    "customers.CustomerItem": "view",
    "customers.Activity": "view",
    "customers.Balance": "view",
    "customers.Points": "points.adjust",
    "customers.Explain": "view",
    "customers.Messages": "view",
    "records.customer_upsert": "customers.edit",
    "records.CustomersBulk": "customers.edit",
    "records.InvoiceUpsert": "customers.edit",
    "records.InvoicesBulk": "customers.edit",
    "events.Events": "customers.edit",
    # API: runs and the outbox
    "runs.Runs": "view",
    "runs.RunItem": "view",
    "runs.RunExport": "data.export",
    "messages.Messages": "view",
    "messages.Cancel": "messages.cancel",
    "reports.MessagesReport": "view",
    "reports.MessagesReportCsv": "data.export",
    "reports.PointsReport": "view",
    "reports.PointsReportCsv": "data.export",
    "reports.CampaignRunsReport": "view",
    "blasts.Blasts": {"GET": "view", "POST": "datasets.send"},
    "blasts.Preview": "datasets.send",
    "blasts.BlastItem": "view",
    "blasts.Stop": "messages.cancel",
    # API: administration
    "admin.Settings": "settings.manage",
    "admin.Credits": "settings.manage",
    "admin.Users": "users.manage",
    "admin.UserItem": "users.manage",
    "roles.Roles": "users.manage",
    "roles.RoleItem": "users.manage",
    "admin.Tokens": "users.manage",
    # Pages
    "campaign_pages.index": "view",
    "campaign_pages.new": "campaigns.edit",
    "campaign_pages.edit": "view",
    "segment_pages.index": "view",
    "segment_pages.new": "campaigns.edit",
    "segment_pages.edit": "view",
    "segment_pages.dataset": "view",
    "template_pages.index": "view",
    "template_pages.new": "templates.edit",
    "template_pages.edit": "view",
    "customer_pages.index": "view",
    "customer_pages.profile": "view",
    "run_pages.index": "view",
    "message_pages.index": "view",
    "report_pages.messages_page": "view",
    "report_pages.points_page": "view",
    "report_pages.campaign_page": "view",
    "blast_pages.index": "view",
    "blast_pages.show": "view",
    "admin_pages.settings": "settings.manage",
    "admin_pages.users": "users.manage",
    "admin_pages.roles": "users.manage",
}


def needed(endpoint: str, method: str) -> str | None:
    """The permission a request to `endpoint` with `method` needs: LOGGED_IN for any user,
    None when the endpoint (or the method) is not mapped: refused."""
    entry = ENDPOINTS.get(endpoint)
    if entry is None:
        return None
    if method == "OPTIONS":
        return LOGGED_IN
    if isinstance(entry, str):
        return entry
    return entry.get("GET" if method == "HEAD" else method)


class Forbidden(Exception):
    """The current user lacks `permission`; answered with 403 (web.auth.forbidden)."""

    def __init__(self, permission: str) -> None:
        self.permission = permission
        super().__init__(permission)


def can(permission: str) -> bool:
    """Whether the current user's role holds `permission`."""
    assert permission == LOGGED_IN or permission in PERMISSIONS, permission
    return bool(current_user.is_authenticated and current_user.can(permission))


def require(permission: str) -> None:
    """A check inside a handler, where the route's own permission is not enough."""
    if not can(permission):
        raise Forbidden(permission)


def require_all(permissions: Any) -> None:
    """Giving a role (to a user, or permissions to a role) needs each permission it grants:
    whoever manages users cannot hand out more than they hold."""
    for permission in sorted(permissions):
        require(permission)


def sees_contacts() -> bool:
    """Whether emails and phone numbers are shown as they are (else masked)."""
    return can("contacts.view")
