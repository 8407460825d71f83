"""Reciprocal-rank fusion against scores worked out by hand (RRF_K = 60)."""

from __future__ import annotations

import pytest

from newwave.search.rank_fusion import RRF_K, reciprocal_rank_fusion


def test_scores_average_over_the_signals_that_apply_to_the_track() -> None:
    # Tracks 1 and 3 have no lyrics (the lyrics signal does not apply to them); 2 and 4 do.
    sound = [(1, 0.9), (2, 0.8), (3, 0.7)]
    lyrics = [(2, 0.6), (4, 0.5)]
    applies = [{1, 2, 3, 4}, {2, 4}]
    fused = reciprocal_rank_fusion([sound, lyrics], applies)
    # 1: sound rank 1 -> 1/61, one applicable signal -> 1/61          = 0.016393
    # 2: sound rank 2 + lyrics rank 1 -> (1/62 + 1/61) / 2            = 0.016261
    # 3: sound rank 3 -> 1/63 / 1                                      = 0.015873
    # 4: lyrics rank 2 -> 1/62, but sound applies to it too (it was just not in the sound
    #    list) -> (1/62) / 2                                            = 0.008065
    # Dividing by the lists that contain 4 instead would give 1/62 = 0.016129 and put 4
    # above 3.
    assert RRF_K == 60
    assert [t for t, _ in fused] == [1, 2, 3, 4]
    assert [s for _, s in fused] == pytest.approx(
        [1 / 61, (1 / 62 + 1 / 61) / 2, 1 / 63, 1 / 62 / 2], rel=1e-12)


def test_ties_break_by_ascending_track_id() -> None:
    # 5 and 7 swap places between the lists: both score (1/61 + 1/62) / 2 exactly.
    for sound, lyrics in (([(7, 1.0), (5, 0.5)], [(5, 1.0), (7, 0.5)]),
                          ([(5, 1.0), (7, 0.5)], [(7, 1.0), (5, 0.5)])):
        fused = reciprocal_rank_fusion([sound, lyrics], [{5, 7}, {5, 7}])
        assert [t for t, _ in fused] == [5, 7]
        assert fused[0][1] == fused[1][1] == pytest.approx((1 / 61 + 1 / 62) / 2)
    # A three-way tie from one list: 30, 10 and 20 each alone at rank 1 of its own list.
    fused = reciprocal_rank_fusion([[(30, 1.0)], [(10, 1.0)], [(20, 1.0)]],
                                   [{30}, {10}, {20}])
    assert fused == [(10, 1 / 61), (20, 1 / 61), (30, 1 / 61)]


def test_a_track_no_signal_claims_is_not_divided_by_zero() -> None:
    # Track 9 is ranked but listed in no applies set: divided by max(1, 0) = 1.
    assert reciprocal_rank_fusion([[(9, 0.1), (8, 0.05)]], [set()]) == \
        [(9, 1 / 61), (8, 1 / 62)]
    assert reciprocal_rank_fusion([[], []], [{1}, {1}]) == []
    # Scores of the input lists are ignored: only ranks count.
    assert reciprocal_rank_fusion([[(3, -5.0), (4, 99.0)]], [{3, 4}]) == [(3, 1 / 61),
                                                                           (4, 1 / 62)]
