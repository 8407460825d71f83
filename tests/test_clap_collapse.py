"""The CLAP text-collapse check: a checkpoint whose text side embeds every caption to
nearly one vector (laion/larger_clap_music on the hub) is refused at load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from newwave.models.clap import ClapAudioTextModel
from newwave.models.text import ModelLoadError


def _with_text_projection(source: Path, target: Path, *, bias: float) -> Path:
    """A copy of the tiny CLAP whose text projection weights are zeroed (bias set to
    ``bias``): every caption then projects to the same vector (or to zero)."""
    from transformers import ClapModel

    shutil.copytree(source, target)
    model = ClapModel.from_pretrained(source)
    with torch.no_grad():
        for layer in (model.text_projection.linear1, model.text_projection.linear2):
            layer.weight.zero_()
            layer.bias.fill_(bias)
    model.save_pretrained(target)
    return target


def test_a_healthy_random_clap_loads(tiny_clap_dir: Path) -> None:
    ClapAudioTextModel(str(tiny_clap_dir))


@pytest.mark.parametrize("bias", [0.0, 0.5], ids=["zero-vectors", "one-vector"])
def test_a_collapsed_text_projection_is_refused(tiny_clap_dir: Path, tmp_path: Path,
                                                bias: float) -> None:
    broken = _with_text_projection(tiny_clap_dir, tmp_path / "broken", bias=bias)
    with pytest.raises(ModelLoadError, match="broken text projection") as error:
        ClapAudioTextModel(str(broken))
    assert "clap-htsat-unfused" in str(error.value)  # the message names the fix
