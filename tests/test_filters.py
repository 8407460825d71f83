"""Track filters at the catalog (real SQLite), on a small catalog built so that each
condition picks a different set of tracks: an album filter that looked at the artist
column, a reversed lyrics flag or an ignored bound would each give another set."""

from __future__ import annotations

from pathlib import Path

import pytest

from newwave.catalog import Catalog, Lyrics, TrackFilter, TrackRecord

# title: (artist, album_artist, album, genre, year, duration, lyrics)
ROWS = {
    "Harbour Lights": ("Blue Harbour", None, "Night Songs", "Folk", 1990, 120.0, "la la"),
    "Owl Call": ("Night Owl", None, "Blue Days", "Jazz", 2005, 200.0, None),
    "Compiled": ("Various", "Blue Harbour", "Mixtape", "Folk Rock", 2024, 300.0, "oh oh"),
    "Undated": ("Solo", None, None, None, None, None, None),
    "Percent": ("100% Pure", None, "A_B", "Pop", 2010, 90.0, None),
    "Gone": ("Blue Harbour", None, "Night Songs", "Folk", 1990, 120.0, "gone"),
}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory):
    with Catalog(tmp_path_factory.mktemp("filters") / "catalog.sqlite") as cat:
        ids = {}
        for title, (artist, album_artist, album, genre, year, duration, lyrics) in ROWS.items():
            ids[title] = cat.save_track(TrackRecord(
                path=f"/music/{title}.flac", root_id=None, content_hash=title, size=1,
                mtime_ns=1, format="flac", title=title, artist=artist, album_artist=album_artist,
                album=album, genre=genre, year=year, duration=duration),
                Lyrics("embedded", lyrics) if lyrics else None)
        cat.mark_missing([ids["Gone"]])  # a vanished file never passes a filter
        yield cat, ids


def passing(catalog, **conditions) -> set[str]:
    cat, ids = catalog
    found = cat.filter_track_ids(TrackFilter(**conditions))
    return {title for title, track_id in ids.items() if track_id in found}


PRESENT = set(ROWS) - {"Gone"}


@pytest.mark.parametrize(("conditions", "expected"), [
    ({}, PRESENT),
    # album looks at the album column only: "night" is in Harbour Lights' album and in
    # Owl Call's artist; only the first passes.
    ({"album": "night"}, {"Harbour Lights"}),
    ({"album": "BLUE"}, {"Owl Call"}),
    # artist also matches the album artist (Compiled is by Various, album artist Blue Harbour)
    ({"artist": "harbour"}, {"Harbour Lights", "Compiled"}),
    ({"artist": "night"}, {"Owl Call"}),
    ({"genre": "folk"}, {"Harbour Lights", "Compiled"}),
    # has_lyrics True / False are complements over the present tracks
    ({"has_lyrics": True}, {"Harbour Lights", "Compiled"}),
    ({"has_lyrics": False}, {"Owl Call", "Undated", "Percent"}),
    # year bounds are inclusive; a track without a year fails any year bound
    ({"year_min": 2005}, {"Owl Call", "Compiled", "Percent"}),
    ({"year_min": 2006}, {"Compiled", "Percent"}),
    ({"year_max": 2005}, {"Harbour Lights", "Owl Call"}),
    ({"year_max": 2004}, {"Harbour Lights"}),
    ({"year_min": 2005, "year_max": 2010}, {"Owl Call", "Percent"}),
    # durations are inclusive too
    ({"min_duration": 200}, {"Owl Call", "Compiled"}),
    ({"min_duration": 200.5}, {"Compiled"}),
    ({"max_duration": 120}, {"Harbour Lights", "Percent"}),
    ({"max_duration": 119.9}, {"Percent"}),
    # conditions combine with AND
    ({"genre": "folk", "has_lyrics": True, "year_min": 2000}, {"Compiled"}),
    ({"artist": "harbour", "album": "mix"}, {"Compiled"}),
    # LIKE's wildcards in a value match literally
    ({"artist": "100%"}, {"Percent"}),
    ({"artist": "%"}, {"Percent"}),
    ({"album": "A_B"}, {"Percent"}),
    ({"album": "_"}, {"Percent"}),
    ({"album": "!"}, set()),
    # an empty text condition does not filter
    ({"artist": ""}, PRESENT),
])
def test_each_condition_selects_exactly_its_tracks(catalog, conditions, expected) -> None:
    assert passing(catalog, **conditions) == expected


def test_active_says_whether_anything_filters() -> None:
    assert not TrackFilter().active and not TrackFilter(artist="").active
    assert TrackFilter(has_lyrics=False).active and TrackFilter(year_min=0).active


def test_escape_character_itself_matches_literally(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as cat:
        bang = cat.save_track(TrackRecord(path="/m/x.flac", root_id=None, content_hash="x",
                                          size=1, mtime_ns=1, format="flac", title="x",
                                          artist="Wham!"), None)
        cat.save_track(TrackRecord(path="/m/y.flac", root_id=None, content_hash="y", size=1,
                                   mtime_ns=1, format="flac", title="y", artist="Whamm"), None)
        assert cat.filter_track_ids(TrackFilter(artist="m!")) == {bang}


# -- conditions on measured descriptors (tempo, key) ---------------------------------------

# title: (bpm, key as the analyser spelled it, mode); None: the track has no descriptors row
MEASURED = {
    "Slow Minor": (70.0, "A", "minor"),
    "Mid Major": (120.0, "Db", "major"),  # stored as C#: the catalog's one spelling
    "Fast Minor": (174.0, "F#", "minor"),
    "No Pulse": (None, "A#", "major"),  # a key but no tempo (stored as Bb)
    "Unmeasured": None,  # indexed before descriptors, or not yet analysed
}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory):
    from newwave.catalog.models import TrackDescriptors

    with Catalog(tmp_path_factory.mktemp("descriptors") / "catalog.sqlite") as cat:
        ids = {}
        for title in [*MEASURED, "Failed", "Stale", "Gone"]:
            ids[title] = cat.save_track(TrackRecord(
                path=f"/music/{title}.flac", root_id=None, content_hash=title, size=1,
                mtime_ns=1, format="flac", title=title), None)
        a_minor_120 = {"bpm": 120.0, "key": "A", "mode": "minor"}
        rows = {title: dict(zip(("bpm", "key", "mode"), values))
                for title, values in MEASURED.items() if values is not None}
        rows |= {"Stale": a_minor_120, "Gone": a_minor_120}
        for title, values in rows.items():
            cat.put_descriptors(TrackDescriptors(track_id=ids[title], analyser="librosa",
                                                 analyser_version="test", **values), title)
        cat.record_descriptor_failure(ids["Failed"], "Failed", "librosa", "test", "broken")
        # Stale: the file changed after it was measured; its old values no longer count.
        cat.save_track(TrackRecord(path="/music/Stale.flac", root_id=None,
                                   content_hash="Stale v2", size=2, mtime_ns=2, format="flac",
                                   title="Stale"), None, track_id=ids["Stale"])
        cat.mark_missing([ids["Gone"]])
        yield cat, ids


ALL_MEASURED = set(MEASURED) | {"Failed", "Stale"}


@pytest.mark.parametrize(("conditions", "expected"), [
    # Bounds are inclusive; a track without a measured tempo fails any bound. Stale
    # (measured 120 before its file changed) and Gone (missing) never pass.
    ({"bpm_min": 120}, {"Mid Major", "Fast Minor"}),
    ({"bpm_min": 120.5}, {"Fast Minor"}),
    ({"bpm_max": 120}, {"Slow Minor", "Mid Major"}),
    ({"bpm_max": 119.5}, {"Slow Minor"}),
    ({"bpm_min": 70, "bpm_max": 174}, {"Slow Minor", "Mid Major", "Fast Minor"}),
    ({"bpm_min": 175}, set()),
    # A key with a mode matches that mode; without one, either mode.
    ({"key": "A minor"}, {"Slow Minor"}),
    ({"key": "Am"}, {"Slow Minor"}),
    ({"key": "a"}, {"Slow Minor"}),
    ({"key": "A major"}, set()),
    # Enharmonic spellings are one key: Db = C#, Gb = F#, A# = Bb.
    ({"key": "C#"}, {"Mid Major"}),
    ({"key": "Db major"}, {"Mid Major"}),
    ({"key": "c#m"}, set()),
    ({"key": "Gbm"}, {"Fast Minor"}),
    ({"key": "F# minor"}, {"Fast Minor"}),
    ({"key": "Bb"}, {"No Pulse"}),
    ({"key": "a# major"}, {"No Pulse"}),
    # An empty key does not filter; conditions combine with AND.
    ({"key": ""}, ALL_MEASURED),
    ({"bpm_min": 100, "key": "F#"}, {"Fast Minor"}),
    ({"bpm_max": 100, "key": "F#"}, set()),
])
def test_descriptor_conditions_select_exactly_their_tracks(measured, conditions,
                                                           expected) -> None:
    assert passing(measured, **conditions) == expected


@pytest.mark.parametrize("key", ["H", "A dorian", "Amm", "sharp", "12", "C##"])
def test_a_key_that_is_not_a_key_is_refused_with_the_accepted_forms(key: str) -> None:
    from newwave.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"is not a key; give a tonic A-G .* 'Am'"):
        TrackFilter(key=key)
