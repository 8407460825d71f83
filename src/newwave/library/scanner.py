"""Scanning a music folder into the catalog, incrementally.

A rescan only reads what changed: a file whose size, mtime and sidecars match the
catalog is skipped; a file whose stats changed is hashed, and only re-read when its
content changed. A new path whose content hash matches a track whose file is gone is
that track moved or renamed: it keeps its id (and so its vectors and feedback).
Every file commits on its own, so an interrupted scan resumes where it stopped, and
tracks are only marked missing after a complete walk.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from newwave.audio import AudioDecodeError, decode, probe
from newwave.catalog import Catalog, JobProgress, Track, TrackRecord
from newwave.catalog.models import Lyrics
from newwave.library.covers import cover_from_bytes, cover_from_file
from newwave.library.naming import guess_from_path
from newwave.library.sidecars import folder_cover, lyrics_sidecar, normalise_lyrics, read_lyrics_file
from newwave.library.tags import FileTags, TagReadError, read_tags
from newwave.errors import InvalidInput

AUDIO_EXTENSIONS = frozenset({".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4",
                              ".aac", ".wav", ".aif", ".aiff"})
# Audio formats people keep in music folders that NewWave does not read: recorded as
# errors (so the user sees them) instead of silently ignored.
UNSUPPORTED_AUDIO_EXTENSIONS = frozenset({".wma", ".ape", ".wv", ".mpc", ".dsf", ".dff",
                                          ".mid", ".midi", ".mod", ".xm", ".it", ".s3m",
                                          ".ra", ".amr"})
VERIFY_SAMPLE_RATE = 16000
_HASH_CHUNK = 1 << 20


class ScanError(InvalidInput):
    """The scan cannot start (the folder is not there); nothing was changed."""


@dataclass(frozen=True)
class FoundFile:
    path: Path
    size: int
    mtime_ns: int
    sidecar_sig: str
    lyrics_file: Path | None
    cover_file: Path | None


@dataclass
class ScanReport:
    root: Path
    job_id: int
    total: int = 0
    added: int = 0
    updated: int = 0
    moved: int = 0
    restored: int = 0
    unchanged: int = 0
    missing: int = 0
    failed: int = 0
    resumed: bool = False
    unreadable_dirs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def done(self) -> int:
        return (self.added + self.updated + self.moved + self.restored + self.unchanged
                + self.failed)


@dataclass(frozen=True)
class ScanProgress:
    done: int
    total: int
    path: Path
    report: ScanReport


ProgressCallback = Callable[[ScanProgress], None]


class Scanner:
    """Brings the catalog in line with one folder. ``verify`` also decodes every new or
    changed file completely, catching corrupt audio that a header probe accepts."""

    def __init__(self, catalog: Catalog, *, verify: bool = False,
                 on_progress: ProgressCallback | None = None,
                 job_update_interval: float = 0.5) -> None:
        self.catalog = catalog
        self.verify = verify
        self.on_progress = on_progress
        self.job_update_interval = job_update_interval
        self._folder_covers: dict[tuple[str, str], int | None] = {}

    def scan(self, root: Path) -> ScanReport:
        root = Path(root).expanduser().resolve()
        if not root.is_dir():
            raise ScanError(f"{root}: no such folder; check the path (nothing was changed)")
        root_id = self.catalog.add_root(root)
        resumed = self._close_interrupted_scans(root)
        job_id = self.catalog.start_job("scan", {"root": str(root), "verify": self.verify})
        report = ScanReport(root=root, job_id=job_id, resumed=resumed)
        started = time.monotonic()
        try:
            files = self._walk(root, root_id, report)
            report.total = len(files)
            self._scan_files(files, root, root_id, report)
            report.missing = self._mark_missing(root, {str(f.path) for f in files}, report)
            self.catalog.mark_root_scanned(root_id)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            self.catalog.finish_job(job_id, "interrupted" if interrupted else "failed",
                                    message=f"{report.done} of {report.total} files",
                                    error=None if interrupted else repr(exc))
            raise
        report.elapsed = time.monotonic() - started
        self.catalog.finish_job(job_id, "done", message=_summary(report))
        return report

    # -- walking ---------------------------------------------------------------------

    def _walk(self, root: Path, root_id: int, report: ScanReport) -> list[FoundFile]:
        found: list[FoundFile] = []

        def unreadable(exc: OSError) -> None:
            report.unreadable_dirs.append(str(exc.filename))
            self.catalog.record_error(str(exc.filename), f"cannot read folder ({exc.strerror}); "
                                      "check its permissions", root_id=root_id)

        for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            folder = Path(dirpath)
            siblings = {name.lower(): folder / name for name in filenames}
            cover = folder_cover(siblings)
            for name in sorted(filenames):
                path = folder / name
                ext = path.suffix.lower()
                if name.startswith(".") or ext not in AUDIO_EXTENSIONS | UNSUPPORTED_AUDIO_EXTENSIONS:
                    continue
                if ext in UNSUPPORTED_AUDIO_EXTENSIONS:
                    self._fail(path, f"unsupported format {ext}; convert it to flac, mp3, "
                               "ogg or opus to include it", root_id, report)
                    continue
                try:
                    stat = path.stat()
                    lyrics = lyrics_sidecar(path, siblings)
                    sig = "|".join(_stat_sig(p) for p in (lyrics, cover) if p is not None)
                except OSError as exc:
                    self._fail(path, f"cannot read file ({exc.strerror})", root_id, report)
                    continue
                found.append(FoundFile(path, stat.st_size, stat.st_mtime_ns, sig, lyrics, cover))
        return found

    # -- per file --------------------------------------------------------------------

    def _scan_files(self, files: list[FoundFile], root: Path, root_id: int,
                    report: ScanReport) -> None:
        known = self.catalog.tracks_under(root)
        known_errors = self.catalog.errors_under(root)
        job = JobProgress(self.catalog, report.job_id, self.job_update_interval)
        for found in files:
            track = known.get(str(found.path))
            error = known_errors.get(str(found.path))
            if track is not None and track.missing_since is None and _same_stats(track, found):
                report.unchanged += 1
            elif error is not None and (error.size, error.mtime_ns) == (found.size, found.mtime_ns):
                report.failed += 1  # failed before and unchanged since: no point retrying
            else:
                self._scan_file(found, track, root, root_id, report)
            if self.on_progress is not None:
                self.on_progress(ScanProgress(report.done, report.total, found.path, report))
            job.update(report.done, report.total, str(found.path))

    def _scan_file(self, found: FoundFile, track: Track | None, root: Path, root_id: int,
                   report: ScanReport) -> None:
        try:
            content_hash = hash_file(found.path)
            if track is not None and track.content_hash == content_hash \
                    and track.sidecar_sig == found.sidecar_sig:
                self.catalog.touch_track(track.id, size=found.size, mtime_ns=found.mtime_ns)
                if track.missing_since is not None:
                    report.restored += 1
                else:
                    report.unchanged += 1
                return
            if track is not None:
                self._save(found, content_hash, root, root_id, track.id, report)
                report.updated += 1
            elif (moved := self._moved_track(content_hash)) is not None:
                self._save(found, content_hash, root, root_id, moved.id, report)
                report.moved += 1
            else:
                self._save(found, content_hash, root, root_id, None, report)
                report.added += 1
        except (AudioDecodeError, OSError) as exc:
            self._fail(found.path, str(exc), root_id, report, found)

    def _moved_track(self, content_hash: str) -> Track | None:
        """A catalogued track with this content whose file is no longer where it was."""
        for candidate in self.catalog.tracks_with_hash(content_hash):
            if not os.path.exists(candidate.path):
                return candidate
        return None

    def _save(self, found: FoundFile, content_hash: str, root: Path, root_id: int,
              track_id: int | None, report: ScanReport) -> None:
        info = probe(found.path)
        if self.verify:
            decode(found.path, VERIFY_SAMPLE_RATE)
        try:
            tags = read_tags(found.path)
        except TagReadError as exc:
            report.warnings.append(f"{exc}; using the file name instead")
            tags = FileTags()
        guess = guess_from_path(found.path, root)
        from_tags = [tags.title is not None, tags.artist is not None]
        record = TrackRecord(
            path=str(found.path), root_id=root_id, content_hash=content_hash,
            size=found.size, mtime_ns=found.mtime_ns, sidecar_sig=found.sidecar_sig,
            format=found.path.suffix.lower().lstrip("."), codec=info.codec,
            duration=info.duration or tags.duration, sample_rate=info.sample_rate,
            channels=info.channels, bitrate=info.bitrate,
            title=tags.title or guess.title, artist=tags.artist or guess.artist,
            album=tags.album or guess.album, album_artist=tags.album_artist,
            track_number=tags.track_number or guess.track_number,
            disc_number=tags.disc_number, year=tags.year, genre=tags.genre,
            comment=tags.comment, bpm=tags.bpm,
            tags_source="tags" if all(from_tags) else "mixed" if any(from_tags) else "filename",
            cover_id=self._cover_id(tags, found),
        )
        self.catalog.save_track(record, self._lyrics(tags, found), track_id)

    def _lyrics(self, tags: FileTags, found: FoundFile) -> Lyrics | None:
        """Embedded lyrics first, then a ``.lrc`` sidecar, then a ``.txt`` one."""
        if tags.lyrics and (text := normalise_lyrics(tags.lyrics)):
            return Lyrics("embedded", text)
        return read_lyrics_file(found.lyrics_file) if found.lyrics_file else None

    def _cover_id(self, tags: FileTags, found: FoundFile) -> int | None:
        picture = tags.front_cover()
        if picture is not None and (cover := cover_from_bytes(picture.data, "embedded")):
            return self.catalog.add_cover(cover)
        if found.cover_file is None:
            return None
        key = (str(found.cover_file), _stat_sig(found.cover_file))
        if key not in self._folder_covers:  # one read per folder image per scan
            cover = cover_from_file(found.cover_file)
            self._folder_covers[key] = self.catalog.add_cover(cover) if cover else None
        return self._folder_covers[key]

    def _fail(self, path: Path, message: str, root_id: int, report: ScanReport,
              found: FoundFile | None = None) -> None:
        self.catalog.record_error(str(path), message, root_id=root_id,
                                  size=found.size if found else None,
                                  mtime_ns=found.mtime_ns if found else None)
        report.failed += 1

    # -- after the walk --------------------------------------------------------------

    def _mark_missing(self, root: Path, seen: set[str], report: ScanReport) -> int:
        """Mark tracks whose files vanished; never those under a folder we could not read."""
        blind = tuple(d.rstrip("/") + "/" for d in report.unreadable_dirs)
        gone = [t.id for path, t in self.catalog.tracks_under(root).items()
                if path not in seen and t.missing_since is None and not path.startswith(blind)
                and not os.path.exists(path)]
        stale_errors = [p for p in self.catalog.errors_under(root)
                        if p not in seen and not os.path.exists(p)]
        self.catalog.clear_errors(stale_errors)
        return self.catalog.mark_missing(gone)

    def _close_interrupted_scans(self, root: Path) -> bool:
        """Mark scans of ``root`` whose process died as interrupted; refuse to run beside
        a live one."""
        stale = []
        for job in self.catalog.jobs(kind="scan", status="running"):
            if job.params.get("root") != str(root):
                continue
            if job.pid != os.getpid() and self.catalog.job_process_alive(job):
                raise ScanError(f"{root}: another scan is running (process "
                                f"{job.pid}, job {job.id}); wait for it to finish")
            stale.append(job)
        for job in stale:
            self.catalog.finish_job(job.id, "interrupted", message="resumed by a later scan")
        return bool(stale)


def hash_file(path: Path) -> str:
    """Content identity of a file (BLAKE2b-128 of every byte)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def _stat_sig(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def _same_stats(track: Track, found: FoundFile) -> bool:
    return (track.size, track.mtime_ns, track.sidecar_sig) == (found.size, found.mtime_ns,
                                                               found.sidecar_sig)


def _summary(report: ScanReport) -> str:
    return (f"{report.added} added, {report.updated} updated, {report.moved} moved, "
            f"{report.restored} restored, {report.unchanged} unchanged, "
            f"{report.missing} missing, {report.failed} failed")
