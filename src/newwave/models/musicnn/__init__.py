"""musicnn: the offline default audio model (50 MSD + 50 MTT tags, 400-d embedding)."""

from newwave.models.musicnn.checkpoint import Checkpoint, CheckpointError
from newwave.models.musicnn.model import MSD_TAGS, MTT_TAGS, TAGS, MusicnnAudioModel

__all__ = ["MSD_TAGS", "MTT_TAGS", "TAGS", "Checkpoint", "CheckpointError", "MusicnnAudioModel"]
