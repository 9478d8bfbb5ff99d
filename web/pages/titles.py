"""Node titles for the pages that list run figures node by node (campaigns, runs): the graph of
the version that ran, titled as the editor titles it (engine/labels.py node_title)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select, tuple_

from engine.labels import node_title
from engine.models import Campaign, CampaignVersion, Segment, Template

Titles = dict[tuple[str, int], dict[str, str]]


def node_titles(conn: Connection, versions: Iterable[tuple[str, int]]) -> Titles:
    """For each (campaign key, version): node id -> title; a version not found has none."""
    wanted = set(versions)
    if not wanted:
        return {}
    names = {"segments": {k: n for k, n in conn.execute(select(Segment.key, Segment.name))},
             "templates": {k: n or k for k, n in conn.execute(select(Template.key, Template.name))}}
    rows = conn.execute(
        select(Campaign.key, CampaignVersion.version, CampaignVersion.graph)
        .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
        .where(tuple_(Campaign.key, CampaignVersion.version).in_(sorted(wanted))))
    titles: Titles = {}
    for key, version, graph in rows:
        mine = {n["id"]: node_title(n, names) for n in graph.get("nodes", [])}
        twins = {t for t in mine.values() if list(mine.values()).count(t) > 1}
        titles[(key, version)] = {i: f"{t} ({i})" if t in twins else t for i, t in mine.items()}
    return titles
