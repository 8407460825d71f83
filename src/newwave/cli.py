"""The ``newwave`` command line. Thin: it parses, calls the service, and prints.

Heavy libraries (torch, FAISS, transformers) load only inside the commands that use
them, so ``newwave --help`` and ``newwave library ...`` answer at once.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from newwave.catalog import Catalog, TrackFilter
from newwave.config import Settings
from newwave.errors import NewWaveError
from newwave.models.registry import AUDIO_MODEL_CHOICES
from newwave.service import NewWave, UpdateProgress, UpdateReport

if TYPE_CHECKING:
    from newwave.indexer import EmbedProgress, EmbedReport
    from newwave.library import ScanProgress, ScanReport
    from newwave.search import SearchResult

console = Console()
err_console = Console(stderr=True)


class _Commands(TyperGroup):
    """Catches every NewWave error once: its message, exit code 1, no traceback (unless
    ``--debug``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewWaveError as exc:
            if ctx.meta.get("newwave.debug"):
                raise
            _fail(str(exc))


app = typer.Typer(cls=_Commands, help="NewWave: find music by description.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
train_app = typer.Typer(help="Train models: fusion, lyrics encoder, CLAP; align catalogs.",
                        no_args_is_help=True)
library_app = typer.Typer(help="Look at the catalog: tracks, statistics, scan errors.",
                          no_args_is_help=True)
app.add_typer(library_app, name="library")
app.add_typer(train_app, name="train")


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(
        help="Where the catalog and indexes live (env NEWWAVE_DATA_DIR; default: per-user data dir).",
        show_default=False)] = None,
    config: Annotated[Path | None, typer.Option(
        help="TOML settings file (env NEWWAVE_CONFIG).", show_default=False)] = None,
    text_model: Annotated[str | None, typer.Option(
        help="Text encoder: sentence-transformers name or folder (env NEWWAVE_TEXT_MODEL; "
             "default all-MiniLM-L6-v2, offline).", show_default=False)] = None,
    audio_model: Annotated[str | None, typer.Option(
        help=f"Audio model: {AUDIO_MODEL_CHOICES} (env NEWWAVE_AUDIO_MODEL; default musicnn, "
             "offline).", show_default=False)] = None,
    debug: Annotated[bool, typer.Option(help="Show tracebacks of errors.")] = False,
) -> None:
    ctx.meta["newwave.debug"] = debug
    ctx.obj = Settings.load(data_dir=data_dir, config_file=config, text_model=text_model,
                            audio_model=audio_model)


def _fail(message: str) -> typing.NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def filter_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command one option per ``TrackFilter`` field (built from the field's own
    definition, as the API's query parameters are) and pass them as ``filters=``."""
    filter_options = TrackFilter.options()
    own = [p for p in inspect.signature(command).parameters.values() if p.name != "filters"]
    options = []
    for option in filter_options:
        declared = [option.flag] if option.flag else []
        typer_option = typer.Option(*declared, help=option.help, min=option.ge, max=option.le,
                                    show_default=False)
        options.append(inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY,
                                         default=None,
                                         annotation=Annotated[option.type, typer_option]))

    @functools.wraps(command)
    def run(**values: Any) -> None:
        filters = TrackFilter(**{o.name: values.pop(o.name) for o in filter_options})
        command(filters=filters, **values)

    own_hints = typing.get_type_hints(command, include_extras=True)
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [p.replace(annotation=own_hints.get(p.name, p.annotation),
                   kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + options)
    run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
    return run


class _ShowUpdate(UpdateProgress):
    """Progress bars for an update: one per scanned folder, one for embedding."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task = None
        self.stage = "scan"

    def _bar(self, label: str, **fields: str) -> None:
        self.done()
        columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.description}")]
        self.progress = Progress(*columns, console=console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task("", total=None, **fields)

    def done(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def scanning(self, root: Path) -> None:
        self.stage = "scan"
        self._bar("[bold]scanning")

    def scanned(self, update: ScanProgress) -> None:
        self.progress.update(self.task, completed=update.done, total=update.total,
                             description=update.path.name[:50])

    def scan_done(self, report: ScanReport) -> None:
        self.done()
        _print_report(report)

    def embedding(self, update: EmbedProgress) -> None:
        if self.stage != "embed":
            self.stage = "embed"
            self._bar("[bold]embedding {task.fields[stage]}", stage="")
        self.progress.update(self.task, completed=update.done, total=update.total,
                             stage=update.stage, description=update.track.title[:40])

    def syncing(self) -> None:
        self.done()
        self.stage = "sync"
        console.print("[dim]updating search indexes[/]")


def _update(service: NewWave, roots: list[Path], *, verify: bool = False,
            embed: bool = True) -> UpdateReport:
    """``service.update`` with progress bars; Ctrl-C keeps what was done."""
    shown = _ShowUpdate()
    try:
        report = service.update(roots, verify=verify, embed=embed, progress=shown)
    except KeyboardInterrupt:
        shown.done()
        what = "Vectors computed" if shown.stage == "embed" else "What was scanned"
        err_console.print(f"[yellow]Interrupted.[/] {what} so far is saved; run the same "
                          "command again to resume.")
        raise typer.Exit(130) from None
    finally:
        shown.done()
    if report.embedded is not None:
        _print_embedded(report.embedded)
        console.print("Search indexes: " + ", ".join(
            f"{kind} {size} vectors" for kind, size in report.index_sizes.items()))
    return report


def _print_embedded(report: EmbedReport) -> None:
    rate = f", {report.audio_seconds / report.elapsed:.0f}x real time" \
        if report.audio_embedded and report.elapsed else ""
    console.print(f"Embedded {report.audio_embedded} tracks' audio and "
                  f"{report.lyrics_embedded} tracks' lyrics in {report.elapsed:.1f}s{rate}"
                  + (f"; [red]{report.audio_failed} failed[/]" if report.audio_failed else ""))
    if report.descriptors_measured or report.descriptors_failed:
        failed = report.descriptors_failed
        console.print(f"Measured tempo, key and loudness of {report.descriptors_measured} "
                      "tracks" + (f"; [red]{failed} failed[/] (see [bold]newwave library "
                                  "errors[/])" if failed else ""))


@app.command()
def index(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Music folders to scan.")],
    verify: Annotated[bool, typer.Option(
        help="Decode every new or changed file completely to catch corrupt audio.")] = False,
    scan_only: Annotated[bool, typer.Option(
        help="Only update the catalog; compute no vectors.")] = False,
) -> None:
    """Scan music folders into the catalog and embed new tracks (incremental, resumable)."""
    with NewWave.open(ctx.obj) as service:
        _update(service, paths, verify=verify, embed=not scan_only)


@app.command()
def models(ctx: typer.Context) -> None:
    """The configured models, and the vectors stored for each model in the catalog."""
    settings: Settings = ctx.obj
    console.print(f"text encoder: [bold]{settings.text_model}[/]  (lyrics, and text queries)")
    console.print(f"audio model:  [bold]{settings.audio_model}[/]  (sound; choices: "
                  f"{AUDIO_MODEL_CHOICES})")
    with NewWave.open(ctx.obj) as service:
        counts = service.catalog.vector_counts()
        spaces = service.catalog.vector_spaces()
        table = Table("kind", "model", "version", "dim", "tracks with vectors")
        for space in spaces:
            table.add_row(space.kind, space.model, space.version, str(space.dim),
                          str(counts.get(space.id, 0)))
        console.print(table if spaces else "No vectors stored yet; run `newwave index FOLDER`.")


def _print_report(report: ScanReport) -> None:
    if report.resumed:
        console.print("[dim]A previous scan of this folder was interrupted; resumed it.[/]")
    console.print(
        f"[bold]{report.root}[/]: {report.total} audio files in {report.elapsed:.1f}s — "
        f"[green]{report.added} added[/], {report.updated} updated, {report.moved} moved, "
        f"{report.restored} restored, {report.unchanged} unchanged, "
        f"[yellow]{report.missing} missing[/], [red]{report.failed} failed[/]")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if report.failed or report.unreadable_dirs:
        console.print("See [bold]newwave library errors[/] for what failed and why.")


def _print_result(result: SearchResult, catalog: Catalog) -> None:
    for note in result.notes:
        console.print(f"[dim]{note}[/]")
    if not result.hits:
        console.print("No matching tracks.")
        return
    descriptors = catalog.descriptors(hit.track.id for hit in result.hits)
    table = Table("#", "id", "title", "artist", "album", "bpm", "key", "score", "why")
    for hit in result.hits:
        measured = descriptors.get(hit.track.id)
        bpm = f"{measured.bpm:.0f}" if measured and measured.bpm else ""
        key = (measured.key_name or "") if measured else ""
        table.add_row(str(hit.rank), str(hit.track.id), hit.track.title, hit.track.artist or "",
                      hit.track.album or "", bpm, key, f"{hit.score:.3f}", hit.why)
    console.print(table)
    console.print(f"[dim]{result.candidates} ranked, {result.elapsed_ms:.0f} ms[/]")


LimitOpt = Annotated[int, typer.Option(min=1, max=1000, help="Hits per page.")]
OffsetOpt = Annotated[int, typer.Option(min=0, help="Skip this many hits (paging).")]


class SearchMode(str, Enum):
    audio = "audio"
    lyrics = "lyrics"
    combined = "combined"


@app.command()
@filter_options
def search(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="What you want to hear.")] = None,
    mode: Annotated[SearchMode, typer.Option(
        help="audio: by sound; lyrics: by meaning; combined: both.")] = SearchMode.combined,
    audio: Annotated[Path | None, typer.Option(
        help="Search by a recording instead of text (any audio file, 3 s or more).")] = None,
    limit: LimitOpt = 10, offset: OffsetOpt = 0, filters: TrackFilter = TrackFilter(),
) -> None:
    """Find tracks by a description (or, with --audio, by a recording)."""
    if (query is None) == (audio is None):
        _fail("give a text query or --audio FILE (one of the two)")
    with NewWave.open(ctx.obj) as service:
        if audio is not None:
            result = service.by_audio(audio, limit=limit, offset=offset, filters=filters)
        else:
            result = service.search(query or "", mode.value, limit=limit, offset=offset,
                                    filters=filters)
        _print_result(result, service.catalog)


@app.command()
@filter_options
def similar(
    ctx: typer.Context,
    track: Annotated[str, typer.Argument(help="Track id, or words of its title.")],
    limit: LimitOpt = 10, offset: OffsetOpt = 0, filters: TrackFilter = TrackFilter(),
) -> None:
    """Tracks that sound like the given one."""
    with NewWave.open(ctx.obj) as service:
        _print_result(service.similar(service.find_track(track), limit=limit, offset=offset,
                                      filters=filters), service.catalog)


LOOPBACK_BINDS = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for the LAN.")] =
    "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    user: Annotated[str, typer.Option(envvar="NEWWAVE_USER", help="The one user's name.")] =
    "newwave",
    password: Annotated[str | None, typer.Option(
        envvar="NEWWAVE_PASSWORD", show_default=False,
        help="Require this password (stored encrypted in the data dir for later runs).")] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="Serve without a password even on a non-loopback address.")] = False,
    allow_host: Annotated[list[str] | None, typer.Option(
        envvar="NEWWAVE_ALLOWED_HOSTS", help="Another host name clients use to reach this "
        "server (repeat; loopback names, IP addresses and this machine's name always work).")
    ] = None,
) -> None:
    """Serve the HTTP API and the web client."""
    import uvicorn

    from newwave.api import create_app
    from newwave.api.security import AccessPolicy, CredentialStore, Credentials

    settings: Settings = ctx.obj
    store = CredentialStore(settings.data_dir)
    if password:
        store.save(Credentials(user, password))
    credentials = None if no_auth else store.load()
    if credentials is None and not no_auth and host not in LOOPBACK_BINDS:
        _fail(f"serving on {host} lets anyone on the network use your library; set a password "
              "with --password or NEWWAVE_PASSWORD (or accept the risk with --no-auth)")
    access = AccessPolicy.for_bind(host, credentials=credentials,
                                   extra_hosts=tuple(allow_host or ()),
                                   session_key=store.key())
    service = NewWave.open(settings)
    for job in service.catalog.interrupt_orphaned_jobs():
        console.print(f"[yellow]job {job.id} ({job.kind}) was left running by a process that "
                      "ended; marked interrupted[/]")
    api = create_app(service=service, access=access)
    with console.status("loading models and search indexes"):
        service.warm_up()
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    console.print(f"NewWave is serving {settings.catalog_path.parent} at "
                  f"[bold]http://{shown}:{port}/[/]" +
                  (" (and on this machine's LAN address)" if host == "0.0.0.0" else "") +
                  (f"; sign in as {credentials.user}" if credentials else ""))
    # One process: the models and indexes live once in memory, the query encoder batches
    # concurrent searches, and torch already uses both cores for a batch.
    uvicorn.run(api, host=host, port=port, log_level="warning")


@app.command("eval")
def eval_command(
    ctx: typer.Context,
    audio_root: Annotated[Path | None, typer.Option(
        help="Folder the benchmark's audio paths are relative to (not with --suite).")] = None,
    manifest: Annotated[Path | None, typer.Option(
        help="JSONL manifest: query, audio/audios, optional lyrics, relevant.")] = None,
    song_describer: Annotated[Path | None, typer.Option(
        help="Song Describer captions CSV (song_describer.csv).")] = None,
    musiccaps: Annotated[Path | None, typer.Option(
        help="MusicCaps CSV (musiccaps-public.csv).")] = None,
    suite: Annotated[Path | None, typer.Option(
        help="A folder of benchmarks (<set>/manifest.jsonl with its audio): every set in "
        "one run, one table with the macro-average.")] = None,
    all_captions: Annotated[bool, typer.Option(
        help="Song Describer: every caption, not only the valid subset.")] = False,
    mode: Annotated[list[SearchMode] | None, typer.Option(
        help="Search modes to evaluate (repeat for several).")] = None,
    eval_audio_model: Annotated[list[str] | None, typer.Option(
        "--with-audio-model", help="Audio models to compare (repeat; default: the "
        "configured one).")] = None,
    ablation: Annotated[bool, typer.Option(
        help="Also run the audio mode with each part of the sound scoring switched on in "
        "turn (docs/evaluation.md).")] = False,
    cache: Annotated[Path | None, typer.Option(
        help="Keep the indexed benchmark libraries here, so a rerun only runs the queries.")]
        = None,
    out: Annotated[Path | None, typer.Option(
        help="Output folder (default: ./eval-results/<dataset or suite>).")] = None,
) -> None:
    """Measure retrieval quality (MRR, Recall@K, ...) on a benchmark, beside baselines."""
    from newwave.eval import (load_manifest, load_musiccaps, load_song_describer, model_configs,
                              run_eval, write_report)
    from newwave.eval.suite import SuiteResult, load_suite

    settings: Settings = ctx.obj
    sources = [(manifest, load_manifest), (song_describer, lambda p, r: load_song_describer(
        p, r, valid_only=not all_captions)), (musiccaps, load_musiccaps)]
    chosen = [(path, loader) for path, loader in sources if path is not None]
    if len(chosen) + (suite is not None) != 1:
        _fail("give exactly one of --manifest, --song-describer, --musiccaps, --suite")
    if suite is None and audio_root is None:
        _fail("--audio-root is needed with --manifest, --song-describer and --musiccaps")
    if suite is not None:
        datasets = load_suite(suite)
    else:
        path, loader = chosen[0]
        datasets = [loader(path, audio_root)]
    configs = model_configs([m.value for m in mode or [SearchMode.audio, SearchMode.combined]],
                            eval_audio_model or [settings.audio_model], settings.text_model,
                            ablation=ablation)
    runs = []
    for dataset in datasets:
        for note in dataset.notes:
            console.print(f"[yellow]{dataset.name}: {note}[/]")
        run = run_eval(dataset, configs, settings, cache_dir=cache,
                       log=lambda line: console.print(f"[dim]{line}[/]"))
        paths = write_report(run, (out or Path("eval-results") / (
            suite.name if suite else dataset.name)) / (dataset.name if suite else ""))
        runs.append(run)
        console.print("Wrote " + ", ".join(str(p) for p in paths.values()))
    if suite is None:
        table = Table("configuration", "MRR", "R@1", "R@5", "R@10", "mAP@10", "nDCG@10",
                      "median rank")
        for result in runs[0].results:
            m = result.metrics
            table.add_row(result.config.name, *(f"{m[k].mean:.3f}" for k in
                          ("MRR", "HitRate@1", "HitRate@5", "HitRate@10", "mAP@10", "nDCG@10")),
                          f"{m['MedianRank'].mean:.1f}")
        console.print(table)
        return
    result = SuiteResult(runs)
    table = Table("configuration", "set", "MRR [95% CI]", "R@1", "R@10")
    for name, dataset_name, estimates in result.rows():
        style = "bold" if dataset_name == "macro" else None
        table.add_row(name, dataset_name, *(f"{e.mean:.3f} [{e.low:.3f}, {e.high:.3f}]"
                                            for e in estimates.values()), style=style)
    console.print(table)
    paths = result.write(out or Path("eval-results") / suite.name)
    console.print("Wrote " + ", ".join(str(p) for p in paths.values()))


ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="TOML file of the trainer's settings (see docs/training.md).")]
DataOpt = Annotated[Path | None, typer.Option(help="Training data (overrides the config).")]
OutOpt = Annotated[Path | None, typer.Option(help="Output folder (overrides the config).")]


@train_app.command("fusion")
def train_fusion_command(ctx: typer.Context, config: ConfigOpt = None, data: DataOpt = None,
                         output_dir: OutOpt = None,
                         epochs: Annotated[int | None, typer.Option()] = None) -> None:
    """Train the fusion model on (query, track) pairs of the indexed library."""
    from newwave.train.common import load_config
    from newwave.models.registry import ActiveModels
    from newwave.train.fusion import FusionTrainConfig, FusionTrainer

    settings: Settings = ctx.obj
    cfg = load_config(FusionTrainConfig, config, data=data, output_dir=output_dir,
                      epochs=epochs, data_dir=settings.data_dir)
    path = FusionTrainer(cfg, ActiveModels(settings)).train()
    console.print(f"Best fusion model: {path}\nUse it: fusion_model = \"{path}\" in "
                  "newwave.toml, or NEWWAVE_FUSION_MODEL")


@train_app.command("lyrics")
def train_lyrics_command(config: ConfigOpt = None, data: DataOpt = None,
                         output_dir: OutOpt = None,
                         epochs: Annotated[int | None, typer.Option()] = None) -> None:
    """Fine-tune the lyrics/description encoder with hard negatives."""
    from newwave.train.common import load_config
    from newwave.train.lyrics import LyricsTrainConfig, LyricsTrainer

    cfg = load_config(LyricsTrainConfig, config, data=data, output_dir=output_dir, epochs=epochs)
    best = LyricsTrainer(cfg).train()
    console.print(f"Best validation MRR {best:.3f}; model: {cfg.output_dir / 'best'} "
                  f"(use --text-model {cfg.output_dir / 'best'})")


@train_app.command("clap")
def train_clap_command(config: ConfigOpt = None, data: DataOpt = None,
                       output_dir: OutOpt = None,
                       steps: Annotated[int | None, typer.Option()] = None) -> None:
    """Fine-tune CLAP with the duration curriculum (a GPU is advised)."""
    from newwave.train.clap import ClapTrainConfig, ClapTrainer
    from newwave.train.common import load_config

    cfg = load_config(ClapTrainConfig, config, data=data, output_dir=output_dir, steps=steps)
    final = ClapTrainer(cfg).train()
    console.print(f"Fine-tuned CLAP: {final} (use --audio-model clap:{final})")


@train_app.command("align")
def train_align_command(
    left: Annotated[Path, typer.Argument(help="CSV with id, title, artist columns.")],
    right: Annotated[Path, typer.Argument(help="CSV with id, title, artist columns.")],
    out: Annotated[Path, typer.Option(help="CSV of matched id pairs.")] = Path("matches.csv"),
    threshold: Annotated[float, typer.Option(min=0, max=100)] = 90.0,
) -> None:
    """Match two track catalogs on normalised title + artist (fuzzy, blocked)."""
    import csv

    from newwave.train.align import CatalogEntry, align

    def read(path: Path) -> list[CatalogEntry]:
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                return [CatalogEntry(r["id"], r["title"], r["artist"]) for r in csv.DictReader(handle)]
        except (OSError, KeyError) as exc:
            _fail(f"{path}: expected a CSV with id, title and artist columns ({exc})")
            raise

    report = align(read(left), read(right), threshold=threshold)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["left_id", "right_id", "score", "left", "right"])
        for m in report.matches:
            writer.writerow([m.left, m.right, m.score, m.left_name, m.right_name])
    console.print(report.summary())
    table = Table("score", "left", "right", title="borderline (review these)")
    for m in report.borderline:
        table.add_row(f"{m.score:.1f}", m.left_name, m.right_name)
    if report.borderline:
        console.print(table)
    console.print(f"Wrote {out}")


@library_app.command("list")
def library_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many tracks to show.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many tracks first.")] = 0,
    missing: Annotated[bool, typer.Option(help="Include tracks whose files are gone.")] = False,
) -> None:
    """List catalogued tracks."""
    with NewWave.open(ctx.obj) as service:
        catalog = service.catalog
        tracks = catalog.tracks(include_missing=missing, limit=limit, offset=offset)
        table = Table("id", "title", "artist", "album", "length", "format", "lyrics", "cover")
        for track in tracks:
            length = f"{int(track.duration // 60)}:{int(track.duration % 60):02d}" \
                if track.duration else "?"
            title = track.title + (" [red](missing)[/]" if track.missing_since else "")
            table.add_row(str(track.id), title, track.artist or "", track.album or "", length,
                          track.format, "yes" if catalog.lyrics(track.id) else "",
                          "yes" if track.cover_id else "")
        console.print(table)


@library_app.command("stats")
def library_stats(ctx: typer.Context) -> None:
    """Summarise the catalog."""
    with NewWave.open(ctx.obj) as service:
        _print_stats(service)


def _print_stats(service: NewWave) -> None:
    stats = service.catalog.stats()
    table = Table(show_header=False, box=None)
    hours, rest = divmod(int(stats.total_duration), 3600)
    rows = [("tracks", stats.tracks), ("artists", stats.artists), ("albums", stats.albums),
            ("total length", f"{hours}h {rest // 60:02d}m"),
            ("with lyrics", stats.with_lyrics), ("with cover art", stats.with_cover),
            ("missing files", stats.missing), ("scan errors", stats.errors),
            ("formats", ", ".join(f"{k} {v}" for k, v in stats.formats.items()) or "-"),
            ("library folders", "\n".join(stats.roots) or "-")]
    for name, value in rows:
        table.add_row(f"[bold]{name}[/]", str(value))
    console.print(table)


@library_app.command("errors")
def library_errors(ctx: typer.Context) -> None:
    """Files that could not be catalogued or embedded, and why."""
    with NewWave.open(ctx.obj) as service:
        rows = [(e.path, "scan", e.error) for e in service.catalog.errors()]
        rows += [(path, f"embed {space}", error)
                 for path, space, error in service.catalog.embed_failures()]
        rows += [(path, f"descriptors ({analyser})", error)
                 for path, analyser, error in service.catalog.descriptor_failures()]
        if not rows:
            console.print("No errors.")
            return
        table = Table("path", "stage", "error")
        for row in rows:
            table.add_row(*row)
        console.print(table)


class DemoChoice(str, Enum):
    auto = "auto"
    debian = "debian"
    synthetic = "synthetic"


@app.command()
def demo(
    ctx: typer.Context,
    source: Annotated[DemoChoice, typer.Option(
        help="auto: Debian's free game soundtracks, else synthesized; or force one.",
        case_sensitive=False)] = DemoChoice.auto,
) -> None:
    """Build the demo library of free music, index it, and show the catalog."""
    from newwave.demo import build_demo_library

    settings: Settings = ctx.obj
    built = build_demo_library(settings.demo_library_dir, settings.cache_dir,
                               source=source.value,
                               log=lambda line: console.print(f"[dim]{line}[/]"))
    console.print(f"Demo library ({built.source}{', already built' if built.reused else ''}): "
                  f"{built.folder}")
    with NewWave.open(ctx.obj) as service:
        _update(service, [built.folder])
        _print_stats(service)


if __name__ == "__main__":
    app()
