"""/api/v1/messages: the outbox by status and campaign, and the STOP button."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from engine.access.masking import masked
from engine.cancel import cancel_messages
from engine.lookup import messages_query
from engine.models import Campaign, Message
from web.api import Blueprint
from web.api.schemas import CancelIn, CancelOut, MessageOut, MessagesArgs
from web.db import engine
from web.permissions import sees_contacts

blp = Blueprint("messages", __name__, url_prefix="/api/v1/messages", description="The outbox")


@blp.route("")
class Messages(MethodView):
    @blp.arguments(MessagesArgs, location="query")
    @blp.response(200, MessageOut(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """Newest first."""
        stmt = (messages_query().order_by(Message.id.desc())
                .limit(args["limit"]).offset(args["offset"]))
        if args["status"]:
            stmt = stmt.where(Message.status == args["status"])
        if args["campaign"]:
            stmt = stmt.where(Campaign.key == args["campaign"])
        with engine().connect() as conn:
            found = [dict(r._mapping) for r in conn.execute(stmt)]
        return found if sees_contacts() else [masked(m) for m in found]


@blp.route("/cancel")
class Cancel(MethodView):
    @blp.arguments(CancelIn)
    @blp.response(200, CancelOut)
    def post(self, args: dict[str, Any]) -> Any:
        """Cancel a campaign's queued and held messages; those a dispatcher already holds
        (`on_their_way`) end as the provider answers."""
        done = cancel_messages(engine(), args["campaign"], args["run_id"])
        return {"count": done.cancelled, "on_their_way": done.on_their_way}
