"""The node contract. A node type is a small module: a marshmallow schema for its config and a
set-based `execute` that turns the set of (customer, occurrence) pairs reaching it into the set
it passes on, as SQL, writing its effects with INSERT ... SELECT."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

from marshmallow import Schema
from sqlalchemy import Connection, FromClause

from engine.errors import Problem
from engine.sql import AnySelect


@dataclass(frozen=True)
class CampaignInfo:
    id: int
    key: str
    name: str
    purpose: str
    timezone: str


@dataclass
class RunContext:
    """What a node may use while it runs. `counts` collects its figures for the runs log."""

    conn: Connection
    campaign: CampaignInfo
    run_date: date
    run_id: int | None
    now: datetime
    catalog: Mapping[str, Any]
    templates: Mapping[str, Any]
    settings: Mapping[str, Any]
    dry_run: bool = False
    manual: bool = False
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What the trigger gives the pairs ("invoice" for invoice_due), and the campaign's exit
    # rules (applied where a wait ends).
    provides: frozenset[str] = frozenset()
    exit_when: Any = None
    # Explain: only this customer's pairs are followed (nothing is written: a dry run).
    only_customer: int | None = None

    def count(self, node_id: str, name: str, value: Any) -> None:
        self.counts.setdefault(node_id, {})[name] = value


@dataclass(frozen=True)
class References:
    """Keys a campaign may refer to: saved segments and templates (plus those in the same file)."""

    segments: frozenset[str]
    templates: Mapping[str, str]  # key -> channel
    # key -> the variables its subject and body read ("customer", "invoice", ...)
    template_reads: Mapping[str, frozenset[str]] = field(default_factory=dict)


class Node(ABC):
    """One node of a campaign graph, built from its validated config."""

    type_name: ClassVar[str]
    schema: ClassVar[type[Schema]]
    is_trigger: ClassVar[bool] = False

    def __init__(self, node_id: str, config: dict[str, Any]) -> None:
        self.id = node_id
        self.config = config

    def check_references(self, refs: References) -> list[Problem]:
        """Problems with keys this node refers to (segments, templates); the `where` of each
        problem is relative to the node's config ("segment", "template")."""
        return []

    def outputs(self) -> tuple[str, ...]:
        """The names of this node's outputs when it has several (a condition's yes and no, a
        split's branches); empty for the one unnamed output of every other node. A node with
        named outputs returns from `execute` a fourth column, `branch`, naming each pair's."""
        return ()

    def provides(self) -> frozenset[str]:
        """The template variables that depend on the graph which this node gives the
        campaign's messages (`invoice`, by an invoice_due trigger)."""
        return frozenset()

    def check_variables(self, provided: frozenset[str], refs: References) -> list[Problem]:
        """Problems with the template variables this node's messages read that the campaign
        does not provide (`provided`: what its trigger provides); `where` as in
        check_references."""
        return []

    def uses(self) -> set[tuple[str, str]]:
        """The saved things this node needs, as ("segment" | "template", key) pairs, so one
        that a campaign still needs is not deleted."""
        return set()

    @abstractmethod
    def execute(self, ctx: RunContext, pairs: FromClause | None) -> AnySelect:
        """Return the pairs this node passes on, as a SELECT of
        (customer_id, occurrence, invoice_id), plus `branch` for a node with named outputs.

        `pairs` is the node's input, a selectable with those three columns (None for the
        trigger, which produces the first set). Effects are written with INSERT ... SELECT and
        ON CONFLICT DO NOTHING on the exactly-once key (campaign, node, customer, occurrence),
        each with its activity in the same transaction, never by looping over customers in
        Python. With `ctx.dry_run` nothing may be written; counts of what would happen go into
        `ctx.count`. Actions pass their input on unchanged so nodes can be chained.
        """
