"""The book of a model's version tracks (monitor/runtime/tracks.py): keys, bounds, superseded."""

from __future__ import annotations

from monitor.core.config import parse_config
from monitor.runtime.tracks import TrackBook, split_track, track_key

CONFIG = parse_config({"version": 1, "models": [
    {"name": "m", "namespace": "ns", "features": [{"name": "x", "type": "numeric"}], "reference": {"path": "r.csv"},
     "versions": {"max_tracked": 2, "idle_after": "10m"}},
]})


def test_a_track_key_names_its_model_and_version() -> None:
    assert [split_track(track_key("ns/m", v)) for v in ("1.2+b", None)] == [("ns/m", "1.2+b"), ("ns/m", None)]


def test_a_rollout_supersedes_the_version_it_replaces() -> None:
    book = TrackBook(CONFIG)
    book.admit("ns/m", "1", 0.0)
    book.seen("ns/m@1", 5, 0.0)
    book.admit("ns/m", "2", 60.0)
    book.seen("ns/m@2", 1, 60.0)
    book.seen("ns/m@1", 9, 61.0)
    assert (book.superseded("ns/m@1", 62.0), book.superseded("ns/m@2", 62.0)) == (True, False)


def test_a_rolled_back_version_stops_superseding_once_idle() -> None:
    book = TrackBook(CONFIG)
    book.admit("ns/m", "1", 0.0)
    book.admit("ns/m", "2", 60.0)
    book.seen("ns/m@2", 1, 60.0)
    book.seen("ns/m@1", 1, 600.0)
    book.seen("ns/m@1", 1, 700.0)
    # version 2 was last seen at 60 s: it still serves at 600 s, not at 700 s (idle for more than 10 minutes)
    assert (book.superseded("ns/m@1", 600.0), book.superseded("ns/m@1", 700.0)) == (True, False)


def test_the_least_recently_seen_version_is_retired() -> None:
    book = TrackBook(CONFIG)
    book.admit("ns/m", "1", 0.0)
    book.admit("ns/m", "2", 1.0)
    book.seen("ns/m@1", 1, 2.0)
    assert (book.admit("ns/m", "3", 3.0), [i.version for i in book.tracks("ns/m")]) == ("ns/m@2", ["1", "3"])


def test_unversioned_traffic_is_a_track_but_never_counts_against_the_bound() -> None:
    book = TrackBook(CONFIG)
    book.seen("ns/m", 3, 0.0)
    book.admit("ns/m", "1", 1.0)
    assert (book.admit("ns/m", "2", 2.0), [i.version for i in book.tracks("ns/m")]) == (None, [None, "1", "2"])
