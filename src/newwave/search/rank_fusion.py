"""Reciprocal-rank fusion: the combined mode's rule when no fusion model is trained."""

from __future__ import annotations

from collections.abc import Collection, Sequence

Ranking = list[tuple[int, float]]  # (track id, score), best first
RRF_K = 60  # the constant of Cormack et al. (2009)


def reciprocal_rank_fusion(rankings: Sequence[Ranking],
                           applies: Sequence[Collection[int]]) -> Ranking:
    """Score = sum over rankings of ``1 / (RRF_K + rank)``, divided by how many of the
    signals apply to the track (``applies[i]``: the tracks signal i can rank at all).

    Plain RRF sums, which makes a track that one signal cannot judge (no lyrics) lose to
    any track both signals half-like; averaging over applicable signals lets it compete
    on the signal it has. Ties break by track id, so rankings are deterministic.
    """
    sums: dict[int, float] = {}
    for ranking in rankings:
        for rank, (track_id, _) in enumerate(ranking, start=1):
            sums[track_id] = sums.get(track_id, 0.0) + 1.0 / (RRF_K + rank)
    scores = {track_id: total / max(1, sum(track_id in tracks for tracks in applies))
              for track_id, total in sums.items()}
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
