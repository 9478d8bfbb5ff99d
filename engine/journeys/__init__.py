"""Journeys beyond one run: explaining what a campaign did, or would do, for one customer."""
