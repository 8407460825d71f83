"""musicnn as NewWave's audio model: tag probabilities and an embedding per track."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from newwave.models.base import ModelInfo, VectorKind, l2_normalize, resample
from newwave.models.musicnn.checkpoint import Checkpoint, CheckpointError
from newwave.models.musicnn.features import SAMPLE_RATE, log_mel, patches
from newwave.models.musicnn.network import Musicnn

# The label order of the checkpoints' output layers (musicnn/configuration.py).
MTT_TAGS = ["guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock",
            "fast", "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian",
            "opera", "male", "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet",
            "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
            "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal",
            "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice",
            "choral"]
MSD_TAGS = ["rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance",
            "00s", "alternative rock", "jazz", "beautiful", "metal", "chillout",
            "male vocalists", "classic rock", "soul", "indie rock", "Mellow", "electronica",
            "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues",
            "hard rock", "ambient", "acoustic", "experimental", "female vocalist", "guitar",
            "Hip-Hop", "70s", "party", "country", "easy listening", "sexy", "catchy", "funk",
            "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad",
            "House", "happy"]
# NewWave's tag vector: the MSD tags, then the MTT tags (names prefixed to keep them apart).
TAGS = [f"msd:{t}" for t in MSD_TAGS] + [f"mtt:{t}" for t in MTT_TAGS]


@dataclass(frozen=True)
class AudioAnalysis:
    tags: np.ndarray  # [100] probabilities, MSD then MTT
    embedding: np.ndarray  # [400] L2-normalised: MSD and MTT penultimate layers
    patches: int  # how many 3 s patches were averaged


def musicnn_weights_dir() -> Path:
    """Where the ``musicnn`` wheel put its checkpoints."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("the musicnn weights are not installed; run "
                              "`pip install --no-deps musicnn==0.1.0` (or `make install`)")
    return Path(next(iter(spec.submodule_search_locations)))


class MusicnnAudioModel:
    """Both pretrained musicnn models (MSD: genres, moods, decades; MTT: instruments,
    tempo, loudness, vocals) run on 3 s patches; outputs are averaged over the track."""

    tags_info = ModelInfo(name="musicnn-tags", version="msd+mtt-v1", dim=len(TAGS))
    embedding_info = ModelInfo(name="musicnn-embedding", version="msd+mtt-v1", dim=400)
    sample_rate = SAMPLE_RATE

    spaces: dict[VectorKind, ModelInfo] = {"audio-text": tags_info, "audio": embedding_info}

    def __init__(self, weights_dir: Path | None = None, batch_size: int = 1) -> None:
        root = weights_dir or musicnn_weights_dir()
        self.batch_size = batch_size  # 1 measured fastest on a 2-core CPU
        self.networks = [Musicnn.from_checkpoint(Checkpoint(f"{root / name}/"))
                         for name in ("MSD_musicnn", "MTT_musicnn")]

    def embed_audio(self, waveform: np.ndarray, sample_rate: int) -> dict[VectorKind, np.ndarray]:
        """The tag space serves text queries; the embedding serves audio-to-audio."""
        analysis = self.analyse(waveform, sample_rate)
        return {"audio-text": analysis.tags, "audio": analysis.embedding}

    @torch.inference_mode()
    def analyse(self, waveform: np.ndarray, sample_rate: int) -> AudioAnalysis:
        """Tags and embedding of a mono waveform of any length (short clips are looped)."""
        signal = resample(waveform, sample_rate, SAMPLE_RATE)
        batch = torch.from_numpy(patches(log_mel(signal)))
        tags, embeddings = [], []
        for network in self.networks:
            outputs = [network(chunk) for chunk in batch.split(self.batch_size)]
            tags.append(torch.cat([o[0] for o in outputs]).mean(dim=0).numpy())
            embeddings.append(l2_normalize(torch.cat([o[1] for o in outputs]).mean(dim=0).numpy()))
        return AudioAnalysis(tags=np.concatenate(tags).astype(np.float32),
                             embedding=l2_normalize(np.concatenate(embeddings)),
                             patches=int(batch.shape[0]))
