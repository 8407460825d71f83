"""The query's words against the tracks' tags (the combined search's metadata signal)."""

from __future__ import annotations

from pathlib import Path

from newwave.catalog import Catalog, TrackRecord
from newwave.search.metadata import MetadataMatcher, track_document


def add(catalog: Catalog, title: str, **tags: object) -> int:
    return catalog.save_track(TrackRecord(path=f"/music/{title}.flac", root_id=None,
                                          content_hash=title, size=1, mtime_ns=1, format="flac",
                                          title=title, **tags), None)


def test_decades_and_genres_match(tmp_path: Path) -> None:
    with Catalog(tmp_path / "catalog.sqlite") as catalog:
        synth = add(catalog, "Neon Lights", genre="Synth-pop", year=1984)
        rock = add(catalog, "Road", genre="Rock", year=1984)
        modern = add(catalog, "Glass", genre="Synthpop", year=2015)
        add(catalog, "Quiet", genre="Ambient", year=1999)
        generation = [0]
        matcher = MetadataMatcher(catalog, lambda: generation[0])
        ranked = [t for t, _ in matcher.rank("80s synth pop")]
        # "80s", "synth" and "pop" all in Neon Lights' tags; Road has the decade only;
        # Glass has "synthpop" (one token), which none of the query's words is
        assert ranked == [synth, rock]
        # both 1984 tracks say "eighties" once; Road's tags are 6 words, Neon Lights' 8,
        # and BM25 favours the shorter document
        assert [t for t, _ in matcher.rank("music from the eighties")] == [rock, synth]
        assert matcher.rank("a song") == []  # fillers only: nothing to match
        assert [t for t, _ in matcher.rank("80s synth pop", allowed={rock})] == [rock]
        # the matcher rebuilds when the library changes
        later = add(catalog, "New", genre="Synth pop", year=1987)
        assert later not in {t for t, _ in matcher.rank("80s synth pop")}
        generation[0] += 1
        assert later in {t for t, _ in matcher.rank("80s synth pop")}
        assert modern not in {t for t, _ in matcher.rank("80s synth pop")}


def test_a_track_document_spells_its_decade() -> None:
    record = TrackRecord(path="/m/a.flac", root_id=None, content_hash="a", size=1, mtime_ns=1,
                         format="flac", title="A", artist="B", year=1972)
    assert track_document(record).split() == ["A", "B", "1972", "1970s", "70s", "seventies"]
