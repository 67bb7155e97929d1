"""The short status description (GitHub 140 chars, GitLab 255): the headline, squeezed."""

from __future__ import annotations

from bot.report.headline import headline_parts
from bot.report.markdown import clean, truncate_bytes
from bot.report.model import ReportModel


def render_status_description(model: ReportModel, max_chars: int) -> str:
    """Plain-text headline within ``max_chars`` (counted as UTF-8 bytes, so chars fit too)."""
    parts = [" ".join(clean(p).split()) for p in headline_parts(model)]
    # Drop the least useful parts first: the commit (shown by the platform), then duration.
    for keep in range(len(parts), 0, -1):
        text = " · ".join(parts[:keep])
        if len(text.encode("utf-8")) <= max_chars:
            return text
    return truncate_bytes(parts[0], max_chars)
