"""musicnn as NewWave's audio model: tag probabilities and an embedding per track."""

from __future__ import annotations

import importlib.util
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from newwave.models.base import (ModelInfo, TextEncoder, TextQueryModel, VectorKind, l2_normalize,
                                 resample)
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

    def __init__(self, weights_dir: Path | None = None, batch_size: int = 1,
                 backend: Literal["auto", "onnx", "torch"] = "auto") -> None:
        """``backend``: the PyTorch port runs as is, or exported to ONNX Runtime (about a
        fifth faster per patch on 2 cores; "auto" uses it when onnxruntime is installed)."""
        root = weights_dir or musicnn_weights_dir()
        self.batch_size = batch_size  # 1 measured fastest on a 2-core CPU
        self.networks = [Musicnn.from_checkpoint(Checkpoint(f"{root / name}/"))
                         for name in ("MSD_musicnn", "MTT_musicnn")]
        if backend == "auto":
            backend = "onnx" if importlib.util.find_spec("onnxruntime") else "torch"
        self.backend = backend
        self._runners: list[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = \
            [_onnx_runner(n) if backend == "onnx" else _torch_runner(n) for n in self.networks]

    def text_queries(self, text_encoder: TextEncoder) -> TextQueryModel:
        """musicnn has no text tower: queries reach its tag space through the text
        encoder (see ``newwave.models.tagspace``)."""
        from newwave.models.tagspace import TagSpaceModel

        return TagSpaceModel(text_encoder)

    def embed_audio(self, waveform: np.ndarray, sample_rate: int) -> dict[VectorKind, np.ndarray]:
        """The tag space serves text queries; the embedding serves audio-to-audio."""
        analysis = self.analyse(waveform, sample_rate)
        return {"audio-text": analysis.tags, "audio": analysis.embedding}

    def analyse(self, waveform: np.ndarray, sample_rate: int) -> AudioAnalysis:
        """Tags and embedding of a mono waveform of any length (short clips are looped)."""
        signal = resample(waveform, sample_rate, SAMPLE_RATE)
        batch = patches(log_mel(signal))
        tags, embeddings = [], []
        for run in self._runners:
            outputs = [run(batch[i:i + self.batch_size])
                       for i in range(0, len(batch), self.batch_size)]
            tags.append(np.concatenate([o[0] for o in outputs]).mean(axis=0))
            embeddings.append(l2_normalize(np.concatenate([o[1] for o in outputs]).mean(axis=0)))
        return AudioAnalysis(tags=np.concatenate(tags).astype(np.float32),
                             embedding=l2_normalize(np.concatenate(embeddings)),
                             patches=len(batch))


Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _torch_runner(network: Musicnn) -> Runner:
    @torch.inference_mode()
    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probabilities, embedding = network(torch.from_numpy(batch))
        return probabilities.numpy(), embedding.numpy()
    return run


def _onnx_runner(network: Musicnn) -> Runner:
    """The same network exported (in memory) to ONNX and run by ONNX Runtime."""
    import onnxruntime

    from newwave.models.musicnn.features import N_MELS, PATCH_FRAMES

    exported = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's tracing chatter
        torch.onnx.export(network.eval(), (torch.zeros(1, PATCH_FRAMES, N_MELS),), exported,
                          input_names=["patches"], output_names=["tags", "embedding"],
                          dynamic_axes={"patches": {0: "batch"}}, dynamo=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(exported.getvalue(), options,
                                           providers=["CPUExecutionProvider"])

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probabilities, embedding = session.run(None, {"patches": batch})
        return probabilities, embedding
    return run
