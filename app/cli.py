"""The ``sw`` command: serve, mock-agencies, worker, matcher, deliver, migrate, admin-key, keys, stats, partitions,
prune, openapi, docs, import."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn

from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.environment import Role, development_warning, production_refusals
from app.migrate import upgrade
from app.observability import configure_logging

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.ceb.importer import ImportSummary, Outcome
    from app.partitioning import Month
    from app.services.partitions import PruneReport

cli = typer.Typer(help="Single Window — cross-border e-commerce three-document exchange", no_args_is_help=True)

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def _refuse_unfit(settings: Settings, role: Role) -> None:
    """SW_ENV=production with development settings: say what to set, and stop before touching anything."""
    if settings.is_production and (refusals := production_refusals(settings, role)):
        typer.echo("SW_ENV=production refuses to start:", err=True)
        for refusal in refusals:
            typer.echo(f"  - {refusal}", err=True)
        raise typer.Exit(2)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL mode)")] = 1,
) -> None:
    """Apply migrations, then run the API (embedded mode: SQLite file by default)."""
    settings = get_settings()
    _refuse_unfit(settings, "api")
    upgrade(settings)
    shown = "localhost" if host in ("0.0.0.0", "::") else host  # noqa: S104 - only used for the printed URL
    typer.echo(f"Single Window — {settings.database_shown()} (migrations applied)")
    warning = development_warning(settings)
    if warning is not None:
        typer.secho(warning, err=True, fg=typer.colors.YELLOW, bold=True)
    typer.echo(f"Swagger UI:  http://{shown}:{port}/docs")
    typer.echo(f"Console:     http://{shown}:{port}/console")
    typer.echo("Admin key:   `sw admin-key` (`make admin-key` in a checkout, `docker compose exec api sw admin-key`)")
    configure_logging()
    uvicorn.run(
        "app.main:create_app", factory=True, host=host, port=port, workers=workers, log_level="info", log_config=None
    )


@cli.command("mock-agencies")
def mock_agencies(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8100,
) -> None:
    """Run the mock customs, inspection, tax and FX agencies alone (POST /mock/{agency}/declarations)."""
    from app.mock_agencies import create_mock_agencies_app

    settings = get_settings()
    shown = "localhost" if host in ("0.0.0.0", "::") else host  # noqa: S104 - only used for the printed URL
    typer.echo(f"Mock agencies: http://{shown}:{port}/mock/{{customs,inspection,tax,fx}}/declarations")
    typer.echo(
        f"latency {settings.mock_latency_ms} ms · failure rate {settings.mock_failure_rate} · "
        f"slow answers {settings.mock_slow_answer_rate} · seed {settings.mock_seed}"
    )
    uvicorn.run(create_mock_agencies_app(settings), host=host, port=port, log_level="info")


@cli.command()
def worker() -> None:
    """Run the dispatcher standalone (production; several at once on PostgreSQL). Agencies need URLs
    (SW_AGENCY_URLS) — there are no in-process mock agencies here; `sw mock-agencies` serves them."""
    from app.worker import main as worker_main

    _refuse_unfit(get_settings(), "worker")
    worker_main()


@cli.command()
def deliver() -> None:
    """Run the delivery worker standalone (production; several at once on PostgreSQL): fans the feed out to the
    enterprises' subscriptions and sends their webhooks and AMQP messages. `sw serve` runs one inside itself
    unless SW_EMBEDDED_DELIVERY=false."""
    from app.notify.worker import main as deliver_main

    deliver_main()


@cli.command()
def matcher() -> None:
    """Run the match stage standalone (production; several at once on PostgreSQL, each taking a disjoint
    share of the accepted documents). `sw serve` runs one inside itself unless SW_EMBEDDED_MATCHER=false."""
    from app.matcher import main as matcher_main

    _refuse_unfit(get_settings(), "matcher")
    matcher_main()


@cli.command()
def migrate() -> None:
    """Apply all migrations to SW_DATABASE_URL."""
    settings = get_settings()
    upgrade(settings)
    typer.echo(f"migrated {settings.database_shown()} to head")


@cli.command("admin-key")
def admin_key(
    label: Annotated[str, typer.Option(help="Who the key is for")] = "cli",
    create_database: Annotated[
        bool, typer.Option("--create", help="Create the SQLite database if there is none (a new, empty one)")
    ] = False,
) -> None:
    """Print a new admin key (shown once; only its hash is stored), for the database the server uses.

    The key goes to standard output; which database it was written to, to standard error. With the default
    SQLite database (var/single-window.db, relative to the current folder) run it from the folder where the
    server runs (`make admin-key` does): from anywhere else it would make a second database and print a key
    the server has never heard of, so it refuses unless told --create.
    """
    from app.services.audit import CLI_ACTOR, record_act
    from app.services.auth import issue_key

    settings = get_settings()
    sqlite_file = settings.sqlite_file
    if sqlite_file is not None and not sqlite_file.exists() and not create_database:
        typer.echo(
            f"No database at {sqlite_file}.\n"
            "A key is good only for the database the server reads: run this in the folder where the server runs "
            "(`make admin-key` in the project folder), or set SW_DATABASE_URL to the server's database. "
            "Pass --create to make a new database here.",
            err=True,
        )
        raise typer.Exit(1)
    upgrade(settings)

    async def create() -> str:
        engine = create_engine(settings)
        try:

            async def issue_and_record(session: AsyncSession) -> str:
                row, plain = await issue_key(session, "admin", None, label)
                after = {"id": str(row.id), "prefix": row.prefix, "kind": "admin", "label": label}
                await record_act(session, CLI_ACTOR, "key.issued", "api_key", row.id, after=after)
                return plain

            return await run_in_transaction(create_sessionmaker(engine), issue_and_record)
        finally:
            await engine.dispose()

    key = asyncio.run(create())
    typer.echo(f"Admin key written to {settings.database_shown()} (shown once):", err=True)
    typer.echo(key)


stats_cli = typer.Typer(help="Statistics (统计监测): the rollups (docs/statistics.md)", no_args_is_help=True)
cli.add_typer(stats_cli, name="stats")


@stats_cli.command("rebuild")
def stats_rebuild() -> None:
    """Recompute every statistics rollup from the records, in one transaction (safe while the service runs)."""
    import time

    from app.services.rollups import rebuild

    settings = get_settings()

    async def recompute() -> int:
        engine = create_engine(settings)
        try:
            return await run_in_transaction(create_sessionmaker(engine), rebuild)
        finally:
            await engine.dispose()

    started = time.perf_counter()
    cells = asyncio.run(recompute())
    typer.echo(f"rebuilt {cells} rollup cells of {settings.database_shown()} in {time.perf_counter() - started:.1f} s")


@cli.command("risk-prune")
def risk_prune() -> None:
    """Run the risk housekeeping now: delete risk counter rows older than every rule's window and raise R8
    warnings. The matcher runs it every SW_RISK_HOUSEKEEPING_INTERVAL_S by itself."""
    from app.db import utcnow
    from app.services.risk_housekeeping import HousekeepingRun, housekeeping

    settings = get_settings()

    async def prune() -> HousekeepingRun:
        engine = create_engine(settings)
        try:
            return await run_in_transaction(
                create_sessionmaker(engine), lambda session: housekeeping(session, settings, utcnow())
            )
        finally:
            await engine.dispose()

    done = asyncio.run(prune())
    if not done.ran:
        typer.echo("another process is running the risk housekeeping; nothing done")
        return
    typer.echo(f"deleted {done.pruned} risk counter rows, raised {done.raised} R8 warnings")


partitions_cli = typer.Typer(
    help="Monthly partitions of the logs on PostgreSQL (docs/storage.md)", no_args_is_help=True
)
cli.add_typer(partitions_cli, name="partitions")


@partitions_cli.command("ensure")
def partitions_ensure(
    ahead: Annotated[int | None, typer.Option(help="Months ahead (default SW_PARTITIONS_AHEAD)")] = None,
) -> None:
    """Create this month's partition and the next ones, and the DEFAULT partitions, where missing (the worker
    does it at start and every SW_PARTITION_MAINTENANCE_S). Nothing to do on SQLite."""
    from app.services.partitions import ensure

    settings = get_settings()

    async def run() -> list[str]:
        engine = create_engine(settings)
        try:
            return await ensure(engine, settings.partitions_ahead if ahead is None else ahead)
        finally:
            await engine.dispose()

    if settings.database_url.startswith("sqlite"):
        typer.echo("SQLite: tables are not partitioned; `sw prune` deletes old months by rows (docs/storage.md)")
        return
    created = asyncio.run(run())
    typer.echo(f"created {len(created)} partitions" + (f": {', '.join(created)}" if created else ""))


@partitions_cli.command("list")
def partitions_list() -> None:
    """Every partition and its row count."""
    from app.services.partitions import is_postgres, partition_sizes

    settings = get_settings()

    async def run() -> list[tuple[str, str, int]]:
        engine = create_engine(settings)
        try:
            return await partition_sizes(engine) if is_postgres(engine) else []
        finally:
            await engine.dispose()

    for table, name, rows in asyncio.run(run()):
        typer.echo(f"{table:18} {name:28} {rows:>12,}")


def _prune_cutoff(before: str | None, retention_months: int, keep_all: str) -> Month | None:
    """The first month kept: ``--before`` or the retention setting; None (said) when everything is kept; exit
    status 2 for a month that is not one or is still written to."""
    from app.db import utcnow
    from app.partitioning import Month
    from app.services.partitions import retention_cutoff

    this_month = Month.of(utcnow())
    try:
        cutoff = Month.parse(before) if before is not None else retention_cutoff(retention_months)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    if cutoff is None:
        typer.echo(f"{keep_all}; pass --before YYYY-MM to prune anyway")
    elif cutoff > this_month:
        typer.echo(f"--before {cutoff} is after the current month {this_month}: months still written to", err=True)
        raise typer.Exit(2)
    return cutoff


def _echo_pruned(report: PruneReport) -> None:
    for pruned in report.pruned:
        typer.echo(f"pruned {pruned.table} {pruned.month}: {pruned.rows} rows → {pruned.file} (sha256 {pruned.sha256})")


@cli.command("prune")
def prune(
    before: Annotated[
        str | None, typer.Option(help="Prune the months before YYYY-MM (default: SW_RETENTION_MONTHS ago)")
    ] = None,
    export_dir: Annotated[Path, typer.Option(help="Where the exports go")] = Path("var/exports"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and count only")] = False,
) -> None:
    """Export, verify, then drop the months of the logs older than the retention (PostgreSQL: detach and drop
    the partitions; SQLite: delete the rows). Refuses, touching nothing, if any of those months holds a row of
    a purchase, delivery or dispatch not yet final. Each pruned partition is an audited act."""
    from app.services.partitions import DetachBlocked, PruneRefused
    from app.services.partitions import prune as prune_months

    settings = get_settings()
    cutoff = _prune_cutoff(before, settings.retention_months, "SW_RETENTION_MONTHS=0: everything is kept")
    if cutoff is None:
        return

    async def run(cutoff: Month) -> PruneReport:
        engine = create_engine(settings)
        try:
            return await prune_months(engine, cutoff, export_dir, dry_run=dry_run)
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(run(cutoff))
    except PruneRefused as refused:
        typer.echo(f"refused, nothing pruned — months before {cutoff} hold rows not yet final:", err=True)
        for refusal in refused.refusals:
            typer.echo(f"  - {refusal}", err=True)
        raise typer.Exit(1) from refused
    except DetachBlocked as blocked:
        if blocked.report is not None:
            _echo_pruned(blocked.report)
        typer.echo(f"stopped: {blocked} — run `sw prune` again when the service is quieter", err=True)
        raise typer.Exit(1) from blocked
    for table, month, rows in report.checked:
        typer.echo(f"would prune {table} {month}: {rows} rows")
    _echo_pruned(report)
    if not report.checked and not report.pruned:
        typer.echo(f"nothing before {cutoff}")


@cli.command("prune-purchases")
def prune_purchases(
    before: Annotated[
        str | None,
        typer.Option(
            help="Prune final purchases last changed before YYYY-MM (default: SW_PURCHASE_RETENTION_MONTHS ago)"
        ),
    ] = None,
    export_dir: Annotated[Path, typer.Option(help="Where the exports go")] = Path("var/exports"),
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Purchases a transaction")] = 500,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count the purchases that would go, touch nothing")
    ] = False,
) -> None:
    """Export, verify, then delete the rows of final purchases older than the retention, in batches; each batch
    is an audited act, and the purchases' keys are kept so that a late resend is refused (PURCHASE_ARCHIVED)."""
    from app.services.purchase_retention import PurchasePruneReport
    from app.services.purchase_retention import prune_purchases as prune

    settings = get_settings()
    kept = "SW_PURCHASE_RETENTION_MONTHS=0: every purchase is kept"
    cutoff = _prune_cutoff(before, settings.purchase_retention_months, kept)
    if cutoff is None:
        return

    async def run() -> PurchasePruneReport:
        engine = create_engine(settings)
        try:
            return await prune(engine, cutoff.start(), export_dir, batch_size=batch_size, dry_run=dry_run)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    if dry_run:
        typer.echo(f"would prune {report.eligible} purchases last changed before {cutoff}")
        return
    for batch in report.batches:
        typer.echo(f"pruned {batch.purchases} purchases ({sum(batch.rows.values())} rows) → {batch.manifest}")
    typer.echo(f"{report.purchases} purchases pruned before {cutoff}")
    if report.kept_unfinished_fanout:
        typer.echo(f"{report.kept_unfinished_fanout} kept for now: webhook deliveries still to send")


keys_cli = typer.Typer(help="The service's signing key and certificate (docs/xml.md#signatures)", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


@keys_cli.command("generate")
def generate_keys(
    algorithm: Annotated[str, typer.Option(help="SM2 (SM2-SM3, as the E-port prefers) or RSA")] = "SM2",
    out: Annotated[Path | None, typer.Option(help="Folder to write to (default: SW_SIGNING_DEV_DIR, var/keys)")] = None,
    force: Annotated[bool, typer.Option(help="Replace a key already there")] = False,
) -> None:
    """Make a development key pair and a self-signed certificate (two years), and say where they are."""
    from app.crypto.identity import KEY_FILE, generate_identity

    if algorithm not in ("SM2", "RSA"):
        raise typer.BadParameter("SM2 or RSA", param_hint="--algorithm")
    directory = out or get_settings().signing_dev_dir
    if (directory / KEY_FILE).exists() and not force:
        typer.echo(f"{directory / KEY_FILE} exists already: --force replaces it", err=True)
        raise typer.Exit(1)
    generated = generate_identity(directory, "SM2" if algorithm == "SM2" else "RSA", replace=force)
    certificate = generated.identity.certificate
    typer.echo(f"private key:  {generated.key_path}  (keep it secret; mode 0600)")
    typer.echo(f"certificate:  {generated.certificate_path}")
    typer.echo(
        f"{certificate.algorithm}, serial {certificate.serial_number}, valid {certificate.not_before:%Y-%m-%d} "
        f"to {certificate.not_after:%Y-%m-%d}, SHA-256 {certificate.fingerprint}"
    )
    typer.echo("To sign with it, set:")
    typer.echo(f"  SW_SIGNING_KEY_PATH={generated.key_path}")
    typer.echo(f"  SW_SIGNING_CERTIFICATE_PATH={generated.certificate_path}")
    typer.echo("(the mock customs verifies with the same certificate; SW_MOCK_CUSTOMS_CERTIFICATE_PATH elsewhere)")


@cli.command()
def openapi(
    output: Annotated[Path, typer.Option(help="Where to write the document")] = OPENAPI_PATH,
) -> None:
    """Write the OpenAPI document generated from the app (kept current by a test)."""
    from app.main import create_app

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_openapi(create_app()) + "\n", encoding="utf-8")
    typer.echo(f"wrote {output}")


@cli.command()
def docs() -> None:
    """Regenerate docs/reason-codes.md and the sample CEB messages in docs/samples/ from the code."""
    from app.ceb import samples
    from app.reason_docs import write

    typer.echo(f"wrote {write()}")
    for path in samples.write():
        typer.echo(f"wrote {path}")


@cli.command("import")
def import_messages(
    paths: Annotated[
        list[Path], typer.Argument(help="CEB XML files, or folders searched recursively for *.xml", exists=True)
    ],
    url: Annotated[str, typer.Option(help="Base URL of the running service", envvar="SW_URL")] = (
        "http://127.0.0.1:8000"
    ),
    key: Annotated[
        str, typer.Option(help="X-API-Key of the transmitting enterprise (its code is the copCode)", envvar="SW_KEY")
    ] = "",
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Messages in flight at once")] = 4,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for one answer")] = 60.0,
    retries: Annotated[
        int, typer.Option(min=0, max=10, help="Resends after a network error, 429 or 5xx (sending again is safe)")
    ] = 3,
) -> None:
    """Send CEB311 / CEB411 / CEB511 messages to a running service, with a progress bar and a summary.

    Exits 0 when every record was stored or replayed, 1 when anything was rejected or failed, 2 when there
    was nothing to send.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from app.ceb.importer import collect_files, send_all

    console = Console()
    if not key:
        console.print("[red]--key (or SW_KEY) is required: the API key of the transmitting enterprise[/red]")
        raise typer.Exit(2)
    files = collect_files(paths)
    if not files:
        console.print("[yellow]no .xml files found[/yellow]")
        raise typer.Exit(2)
    progress = Progress(
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("stored {task.fields[stored]} · replayed {task.fields[replayed]} · rejected {task.fields[bad]}"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("import", total=len(files), stored=0, replayed=0, bad=0)
        counts = {"stored": 0, "replayed": 0, "bad": 0}

        def done(outcome: Outcome) -> None:
            counts["stored"] += outcome.stored
            counts["replayed"] += outcome.replayed
            counts["bad"] += sum(outcome.rejected.values()) + (1 if outcome.kind != "receipt" else 0)
            progress.update(task, advance=1, stored=counts["stored"], replayed=counts["replayed"], bad=counts["bad"])

        sending = send_all(files, url.rstrip("/"), key, concurrency, done, retries=retries, request_timeout=timeout)
        summary = asyncio.run(sending)
    _print_import_summary(console, summary)
    raise typer.Exit(0 if summary.clean else 1)


def _print_import_summary(console: Console, summary: ImportSummary) -> None:
    from rich.table import Table

    table = Table(title="sw import", show_header=True)
    table.add_column("")
    table.add_column("count", justify="right")
    for label, value in (
        ("messages sent", summary.files),
        ("messages answered with a receipt", summary.receipts),
        ("messages refused (CEB900)", summary.refused),
        ("messages failed (HTTP / network)", summary.failed),
        ("records stored", summary.stored),
        ("records replayed (already stored)", summary.replayed),
        ("records rejected", summary.rejected),
    ):
        table.add_row(label, str(value))
    console.print(table)
    if summary.rejections or summary.refusals:
        reasons = Table(title="rejected and refused, by code", show_header=True)
        reasons.add_column("returnStatus [code] / failure")
        reasons.add_column("records", justify="right")
        reasons.add_column("messages", justify="right")
        reasons.add_column("first file")
        for reason in sorted(set(summary.rejections) | set(summary.refusals)):
            reasons.add_row(
                reason,
                str(summary.rejections.get(reason, 0)),
                str(summary.refusals.get(reason, 0)),
                str(summary.first_file.get(reason, "")),
            )
        console.print(reasons)


def render_openapi(app: object) -> str:
    return json.dumps(app.openapi(), ensure_ascii=False, indent=2, sort_keys=False)  # type: ignore[attr-defined]


def main() -> None:
    cli()
