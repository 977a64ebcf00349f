"""Read models of the staff pages: what a board shows, assembled from the store (no web here)."""

from clinicflow.boards.today import (
    CONFIRMATION_LABELS,
    TodayFilters,
    TodayVisit,
    by_provider,
    expected_noshows,
    today_board,
)

__all__ = [
    "CONFIRMATION_LABELS",
    "TodayFilters",
    "TodayVisit",
    "by_provider",
    "expected_noshows",
    "today_board",
]
