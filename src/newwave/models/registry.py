"""Loading the configured models by name (``Settings.text_model`` / ``audio_model``).

Nothing heavy is imported here: torch, transformers and ONNX Runtime load with the
first model, so commands that need no model start fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from newwave.config import ConfigError, Settings
from newwave.models.base import AudioModel, ModelInfo, VectorKind

if TYPE_CHECKING:
    from newwave.models.fusion import FusionModel
    from newwave.models.text import SentenceTransformerEncoder

AUDIO_MODEL_CHOICES = "musicnn, clap, or clap:<hub name or local folder>"


def load_audio_model(spec: str) -> AudioModel:
    if spec == "musicnn":
        from newwave.models.musicnn import MusicnnAudioModel

        return MusicnnAudioModel()
    if spec == "clap" or spec.startswith("clap:"):
        from newwave.models.clap import DEFAULT_CLAP_MODEL, ClapAudioTextModel

        return ClapAudioTextModel(spec.partition(":")[2] or DEFAULT_CLAP_MODEL)
    raise ConfigError(f"unknown audio model {spec!r}; use {AUDIO_MODEL_CHOICES}")


@dataclass
class ActiveModels:
    """The models a NewWave instance uses, loaded on first use (loading takes seconds)."""

    settings: Settings

    @cached_property
    def text_encoder(self) -> SentenceTransformerEncoder:
        from newwave.models.text import SentenceTransformerEncoder

        return SentenceTransformerEncoder(self.settings.text_model)

    @cached_property
    def audio_model(self) -> AudioModel:
        return load_audio_model(self.settings.audio_model)

    def space_info(self, kind: VectorKind) -> ModelInfo:
        """The identity of the active model's ``kind`` space."""
        return self.text_encoder.info if kind == "lyrics" else self.audio_model.spaces[kind]

    @cached_property
    def fusion(self) -> FusionModel | None:
        """The configured fusion model, refused if trained on other models' spaces."""
        if not self.settings.fusion_model:
            return None
        from newwave.models.fusion import FusionModel

        try:
            model = FusionModel.load(Path(self.settings.fusion_model))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        expected = (str(self.audio_model.spaces["audio-text"]), str(self.text_encoder.info))
        trained = (model.config.audio_space, model.config.text_space)
        if trained != expected:
            raise ConfigError(
                f"{self.settings.fusion_model} was trained on {trained[0]} + {trained[1]}, but "
                f"the active models are {expected[0]} + {expected[1]}; retrain it or unset "
                "fusion_model")
        return model
