"""Reading a description as concepts and descriptor wishes (pure text, no model)."""

from __future__ import annotations

import pytest

from newwave.search.concepts import Concept, DescriptorWishes, normalise_key, parse_query


@pytest.mark.parametrize("query, concepts", [
    ("sad piano", [Concept("sad piano")]),
    # clauses break on commas and on "and"/"with"; fillers ("a", "song", "music") go
    ("a sad song, with piano and strings", [Concept("sad"), Concept("piano"),
                                             Concept("strings")]),
    ("no vocals, slow piano", [Concept("vocals", negated=True), Concept("slow piano")]),
    # a negation inside a clause starts a clause of its own
    ("piano without drums", [Concept("piano"), Concept("drums", negated=True)]),
    ("calm ambient for studying", [Concept("calm ambient studying")]),
    ("song about war", [Concept("war")]),
    ("Western music, chill out, folk instrument R & B beat",
     [Concept("Western"), Concept("chill"), Concept("folk instrument rnb beat")]),
])
def test_clauses_become_concepts(query: str, concepts: list[Concept]) -> None:
    assert parse_query(query).concepts == concepts


@pytest.mark.parametrize("query, wishes", [
    ("castle, fantasy, medieval, 100 bpm", DescriptorWishes(bpm=100.0)),
    ("around 87.5 beats per minute", DescriptorWishes(bpm=87.5)),
    ("The tempo of this song is 128.0 beats per minute. The key of this song is G minor.",
     DescriptorWishes(bpm=128.0, key="G", mode="minor")),
    ("something in Bb major", DescriptorWishes(key="A#", mode="major")),
    ("a ballad in F#", DescriptorWishes(tempo="slow", key="F#")),
    ("upbeat and loud", DescriptorWishes(tempo="fast", loudness="loud")),
    # an explicit tempo wins over a tempo word
    ("fast techno at 140 bpm", DescriptorWishes(bpm=140.0)),
    ("sad piano", DescriptorWishes()),
    ("999 bpm", DescriptorWishes()),  # not a tempo music has
])
def test_descriptor_wishes(query: str, wishes: DescriptorWishes) -> None:
    assert parse_query(query).wishes == wishes


def test_descriptor_phrases_leave_the_concepts() -> None:
    parsed = parse_query("techno, 128 bpm, in A minor")
    assert parsed.concepts == [Concept("techno")]
    assert parsed.wishes == DescriptorWishes(bpm=128.0, key="A", mode="minor")


@pytest.mark.parametrize("letter, accidental, key", [
    ("B", "b", "A#"), ("d", "♭", "C#"), ("C", " sharp", "C#"), ("E", "#", "F"), ("G", None, "G")])
def test_keys_have_one_spelling(letter: str, accidental: str | None, key: str) -> None:
    assert normalise_key(letter, accidental) == key
