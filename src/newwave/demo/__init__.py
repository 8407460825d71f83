"""The demo library: real free music from Debian's archive, or a synthesized fallback."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from newwave.demo.debian import DebianUnavailable, build_debian_library
from newwave.demo.synth import build_synthetic_library

DemoSource = Literal["auto", "debian", "synthetic"]
_MARKER = ".newwave-demo"  # written last: its presence means the library is complete


@dataclass(frozen=True)
class DemoLibrary:
    source: Literal["debian", "synthetic"]
    folder: Path
    reused: bool


def build_demo_library(folder: Path, cache_dir: Path, *, source: DemoSource = "auto",
                       log: Callable[[str], None] = print) -> DemoLibrary:
    """Build (once) the demo library in ``folder``.

    ``auto`` uses Debian's archive and falls back, saying why, to the synthesized
    library where the archive cannot be reached.
    """
    marker = folder / _MARKER
    if marker.exists():
        built = marker.read_text(encoding="utf-8").strip()
        if source in ("auto", built):
            return DemoLibrary(built, folder, reused=True)  # type: ignore[arg-type]
    shutil.rmtree(folder, ignore_errors=True)  # a partial or other-source build
    folder.mkdir(parents=True)
    chosen: Literal["debian", "synthetic"] = "synthetic"
    if source in ("auto", "debian"):
        try:
            build_debian_library(folder, cache_dir / "debian", log)
            chosen = "debian"
        except DebianUnavailable as exc:
            if source == "debian":
                raise
            log(f"Debian's archive is not available ({exc}); "
                "building the synthesized demo library instead")
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
    if chosen == "synthetic":
        build_synthetic_library(folder, on_file=lambda p: log(f"synthesized {p.name}"))
    marker.write_text(chosen, encoding="utf-8")
    return DemoLibrary(chosen, folder, reused=False)


__all__ = ["DebianUnavailable", "DemoLibrary", "DemoSource", "build_demo_library"]
