"""One settings object for every front end.

Precedence, highest first: explicit arguments (CLI flags), environment variables
(``NEWWAVE_*``), the TOML file (``NEWWAVE_CONFIG`` or ``<config dir>/newwave.toml``),
then per-user defaults from platformdirs.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from newwave.errors import Unavailable

APP_NAME = "newwave"


class ConfigError(Unavailable, ValueError):
    """The configuration file or an environment variable holds an unusable value."""


DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_AUDIO_MODEL = "musicnn"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    cache_dir: Path
    # sentence-transformers name or local path, for lyrics and queries
    text_model: str = DEFAULT_TEXT_MODEL
    # "musicnn" (offline), "clap" (laion/clap-htsat-unfused) or "clap:<name or path>"
    audio_model: str = DEFAULT_AUDIO_MODEL
    # a trained fusion model file (`newwave.train.fusion`); empty: rank fusion instead
    fusion_model: str = ""

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "indexes"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.sqlite"

    @property
    def demo_library_dir(self) -> Path:
        return self.data_dir / "demo-library"

    @classmethod
    def load(
        cls,
        data_dir: Path | None = None,
        cache_dir: Path | None = None,
        config_file: Path | None = None,
        text_model: str | None = None,
        audio_model: str | None = None,
        fusion_model: str | None = None,
    ) -> Settings:
        file_values = _read_config_file(config_file)
        return cls(
            data_dir=Path(_pick(data_dir, "NEWWAVE_DATA_DIR", file_values, "data_dir",
                                platformdirs.user_data_dir(APP_NAME))).expanduser().resolve(),
            cache_dir=Path(_pick(cache_dir, "NEWWAVE_CACHE_DIR", file_values, "cache_dir",
                                 platformdirs.user_cache_dir(APP_NAME))).expanduser().resolve(),
            text_model=_pick(text_model, "NEWWAVE_TEXT_MODEL", file_values, "text_model",
                             DEFAULT_TEXT_MODEL),
            audio_model=_pick(audio_model, "NEWWAVE_AUDIO_MODEL", file_values, "audio_model",
                              DEFAULT_AUDIO_MODEL),
            fusion_model=_pick(fusion_model, "NEWWAVE_FUSION_MODEL", file_values, "fusion_model",
                               ""),
        )


def default_config_file() -> Path:
    return Path(os.environ.get("NEWWAVE_CONFIG") or
                Path(platformdirs.user_config_dir(APP_NAME)) / "newwave.toml")


def _read_config_file(config_file: Path | None) -> dict[str, Any]:
    path = config_file or default_config_file()
    if not path.exists():
        if config_file is not None:
            raise ConfigError(f"{path}: config file not found; create it or drop the option")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix or remove the file") from exc


def _pick(explicit: Path | str | None, env_var: str, file_values: dict[str, Any],
          key: str, default: str) -> str:
    """The first of: explicit value, environment variable, config file, default."""
    if explicit is not None:
        return str(explicit)
    if os.environ.get(env_var):
        return os.environ[env_var]
    if key in file_values:
        value = file_values[key]
        if not isinstance(value, str):
            raise ConfigError(f"config key {key!r} must be a string, got {value!r}")
        return value
    return default
