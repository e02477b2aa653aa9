"""The click-attribution simulation (bench/click_attribution.py) on the real code: its figures are
printed (README quotes the full run, `python -m bench.click_attribution`); the test holds the
properties that must not depend on traffic — never a guess among several sessions, no wrong guess
while visitors never overlap — and that busier sites are harder, not easier."""
from __future__ import annotations

from bench.click_attribution import simulate, table


def test_one_visitor_at_a_time_is_always_attributed_right(tmp_path):
    # A click every 10 hours on average and no chats from elsewhere: every guess must be right.
    figures = simulate(0.1, clicks=60, organic_share=0.0, workdir=tmp_path)
    print("\n" + table([figures]))
    assert figures.talks_from_clicks > 20 and figures.guessed_wrong == 0 and figures.precision == 1.0
    # Missed: chats begun more than the window after their click, and the rare two clicks close together
    # (random gaps are sometimes short), which are left to the mapping rather than guessed.
    assert figures.recall >= 0.85 and figures.attributed + figures.no_guess <= figures.talks_from_clicks


def test_precision_and_recall_by_traffic_level(tmp_path):
    rows = [simulate(level, clicks=200, workdir=tmp_path) for level in (1, 10, 100)]
    print("\n" + table(rows))
    for figures in rows:
        assert figures.guessed_among_several == 0, "a talk was given a session although several had clicked"
        assert figures.attributed == figures.right + figures.guessed_wrong
    quiet, busy, busiest = rows
    assert quiet.precision >= 0.85 and quiet.recall >= 0.7
    assert quiet.recall > busy.recall >= busiest.recall  # overlapping visitors leave more to the mapping
    assert quiet.no_guess < busy.no_guess <= busiest.no_guess
