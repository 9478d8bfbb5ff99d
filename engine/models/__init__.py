"""The data model of DESIGN.md as typed SQLAlchemy 2.0 models."""

from engine.models.auth import ApiToken, ChannelCredit, LoginFailure, Role, Setting, User
from engine.models.base import Base
from engine.models.campaigns import (
    Blast,
    BlastRecipient,
    Campaign,
    CampaignVersion,
    ColumnSet,
    Run,
    Segment,
    Template,
)
from engine.models.customers import Customer, Invoice, birth_mmdd
from engine.models.effects import (
    Activity,
    BonusAllocation,
    BonusLedger,
    Message,
    MessageEvent,
    TestSend,
)
from engine.models.journeys import Event, JourneyWait

__all__ = [
    "Activity",
    "ApiToken",
    "Base",
    "Blast",
    "BlastRecipient",
    "BonusAllocation",
    "BonusLedger",
    "Campaign",
    "CampaignVersion",
    "ChannelCredit",
    "ColumnSet",
    "Customer",
    "Event",
    "Invoice",
    "JourneyWait",
    "LoginFailure",
    "Message",
    "MessageEvent",
    "Role",
    "Run",
    "Segment",
    "Setting",
    "Template",
    "TestSend",
    "User",
    "birth_mmdd",
]
