"""The read replica (SW_READ_DATABASE_URL) against a real streaming replica: a throwaway primary cluster and a
standby made from it by ``pg_basebackup -R`` (tests/pg_cluster.py), one pair for the module.

Reads are shown to come from the replica by what it does not have yet: with its replay paused, a purchase just
stored on the primary is missing from an official's search, the statistics and the feed (answered by the
replica, whose lag the answer reports), while the record by id and the enterprise's own search (primary) have
it. Past the maximum lag, or with the replica stopped, the same reads answer from the primary (or 503 when
fallback is off): stale only by the lag they report, never wrong, never a 500.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.migrate import upgrade
from app.read_replica_retry import recovery_conflict
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_parties, post_triple, purchase
from tests.pg_cluster import Cluster, base_backup, clusters, new_cluster, pg_bin

with_a_replica = [
    pytest.mark.postgres_only,
    pytest.mark.timeout(300),
    pytest.mark.skipif(pg_bin() is None, reason="needs the PostgreSQL server binaries (initdb, pg_basebackup)"),
]

DATABASE = "replicated"


def with_replica(test: Any) -> Any:
    for mark in with_a_replica:
        test = mark(test)
    return test


TOLERANT = 3600.0  # a replica this far behind is still read: the tests that prove where reads go


class Pair:
    def __init__(self, primary: Cluster, standby: Cluster) -> None:
        self.primary, self.standby = primary, standby

    def urls(self) -> dict[str, str]:
        return {
            "database_url": self.primary.url(DATABASE, "postgresql+asyncpg"),
            "read_database_url": self.standby.url(DATABASE, "postgresql+asyncpg"),
        }

    async def standby_shows(self, sql: str, *args: object) -> None:
        """Waits until ``sql`` (with ``args``) is true on the standby."""
        standby = await asyncpg.connect(self.standby.url(DATABASE))
        try:
            for _ in range(1200):
                if await standby.fetchval(sql, *args):
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"the standby never showed {sql} {args}")
        finally:
            await standby.close()

    async def _lsn_reached(self, function: str) -> None:
        """Waits until the standby's ``function`` (receive or replay LSN) has reached the primary's WAL now."""
        primary = await asyncpg.connect(self.primary.url(DATABASE))
        try:
            target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        finally:
            await primary.close()
        await self.standby_shows(f"SELECT {function}() >= $1::pg_lsn", target)

    async def caught_up(self) -> None:
        await self._lsn_reached("pg_last_wal_replay_lsn")

    async def received(self) -> None:
        await self._lsn_reached("pg_last_wal_receive_lsn")

    def pause(self) -> None:
        self.standby.psql("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        self.standby.psql("SELECT pg_wal_replay_resume()")


@pytest.fixture(scope="module")
def pair(database_url: str) -> Iterator[Pair]:
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (set SW_TEST_DATABASE_URL; `.ci/run` does)")
    bin_dir = pg_bin()
    assert bin_dir is not None
    # Not under pytest's temporary folder: every pytest session on the machine makes /tmp/pytest-of-<user>
    # private again (mode 0700) when it starts, which locks the clusters' server user out of it.
    folder = Path(tempfile.mkdtemp(prefix="sw-replication-"))
    with clusters() as made:
        primary = new_cluster(folder / "primary", bin_dir)
        made.append(primary)
        primary.start()
        primary.psql(f"CREATE DATABASE {DATABASE}")
        upgrade(Settings(database_url=primary.url(DATABASE, "postgresql+asyncpg"), _env_file=None))  # type: ignore[call-arg]
        standby, _ = base_backup(primary, folder / "standby", standby=True)
        made.append(standby)
        standby.start()
        try:
            yield Pair(primary, standby)
        finally:
            for cluster in made:
                cluster.stop()
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def replicated(pair: Pair, settings: Settings) -> AsyncIterator[tuple[Pair, Settings]]:
    await pair.caught_up()
    yield pair, settings.model_copy(update=pair.urls() | {"read_retry_s": 0.0})
    pair.resume()  # whatever the test did


def source(response: httpx.Response) -> tuple[str, float, str | None]:
    return (
        response.headers["X-Read-Source"],
        float(response.headers["X-Read-Lag"]),
        response.headers.get("X-Read-Fallback"),
    )


async def search(http: httpx.AsyncClient, order_no: str, headers: dict[str, str] = ADMIN) -> httpx.Response:
    response = await http.get("/api/v1/records", params={"orderNo": order_no}, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def stored_purchase(http: httpx.AsyncClient, parties: Parties) -> dict[str, Any]:
    triple = purchase(own_buyer=True)
    for answer in await post_triple(http, parties, triple):
        assert answer.status_code in (200, 201, 202), answer.text
    found = (await search(http, triple[0]["orderNo"], parties.platform)).json()["items"]
    assert len(found) == 1
    record: dict[str, Any] = found[0]
    return record


@with_replica
async def test_officials_reads_come_from_the_replica_and_own_reads_from_the_primary(
    replicated: tuple[Pair, Settings],
) -> None:
    pair, settings = replicated
    async with serving(settings, read_max_lag_s=TOLERANT) as (_, http):
        parties = await file_parties(http)
        first = await stored_purchase(http, parties)
        await pair.caught_up()
        seen = await search(http, first["orderNo"])
        assert [r["id"] for r in seen.json()["items"]] == [first["id"]]
        assert source(seen) == ("replica", 0.0, None)

        pair.pause()
        second = await stored_purchase(http, parties)
        await pair.received()  # on the standby, not yet replayed

        stale = await search(http, second["orderNo"])
        assert stale.json()["items"] == []  # the replica answered: the primary has it
        read_from, lag, fallback = source(stale)
        assert (read_from, fallback) == ("replica", None)
        assert 0 < lag < TOLERANT

        export = await http.get("/api/v1/records/export", params={"orderNo": second["orderNo"]}, headers=ADMIN)
        assert export.status_code == 200
        assert source(export)[0] == "replica"
        assert second["orderNo"] not in export.text

        feed = await http.get("/api/v1/feed", params={"limit": 1000}, headers=ADMIN)
        assert feed.status_code == 200, feed.text
        assert source(feed)[0] == "replica"
        records_in_feed = {e["recordId"] for e in feed.json()["items"]}
        assert first["id"] in records_in_feed
        assert second["id"] not in records_in_feed

        stats = await http.get("/api/v1/stats/summary", headers=ADMIN)
        assert stats.status_code == 200, stats.text
        assert source(stats)[0] == "replica"

        # What must see its own write stays on the primary.
        by_id = await http.get(f"/api/v1/records/{second['id']}", headers=ADMIN)
        assert by_id.status_code == 200
        assert "X-Read-Source" not in by_id.headers
        own = await search(http, second["orderNo"], parties.platform)
        assert [r["id"] for r in own.json()["items"]] == [second["id"]]
        assert source(own) == ("primary", 0.0, None)

        pair.resume()
        await pair.caught_up()
        caught_up = await search(http, second["orderNo"])
        assert [r["id"] for r in caught_up.json()["items"]] == [second["id"]]
        assert source(caught_up) == ("replica", 0.0, None)


@with_replica
async def test_a_replica_behind_the_maximum_lag_is_not_read(replicated: tuple[Pair, Settings]) -> None:
    pair, settings = replicated
    async with serving(settings, read_max_lag_s=0.001) as (_, http):
        parties = await file_parties(http)
        await pair.caught_up()
        assert source(await search(http, "none")) == ("replica", 0.0, None)  # caught up: no lag at all

        pair.pause()
        record = await stored_purchase(http, parties)
        await pair.received()
        fresh = await search(http, record["orderNo"])
        assert [r["id"] for r in fresh.json()["items"]] == [record["id"]]
        assert source(fresh) == ("primary", 0.0, "lagging")

        ready = await http.get("/readyz")
        assert ready.status_code == 200
        replica = ready.json()["readReplica"]
        assert replica["state"] == "lagging"
        assert replica["lagSeconds"] > replica["maxLagSeconds"] == 0.001
        metrics = (await http.get("/metrics", headers=ADMIN)).text
        assert "sw_read_replica_up 1.0" in metrics
        assert 'sw_routed_reads_total{reason="lagging",source="primary"}' in metrics

    async with serving(settings, read_max_lag_s=0.001, read_fallback=False) as (_, http):
        refused = await http.get("/api/v1/stats/summary", headers=ADMIN)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "READ_REPLICA_UNAVAILABLE"
        assert int(refused.headers["Retry-After"]) >= 1
        assert (await http.get("/api/v1/records", params={"orderNo": "x"}, headers=ADMIN)).status_code == 503
        # Reads that are not routed do not need the replica.
        assert (await http.get(f"/api/v1/records/{uuid.uuid4()}", headers=ADMIN)).status_code == 404


@with_replica
async def test_a_stopped_replica_sends_reads_to_the_primary_or_answers_503(
    replicated: tuple[Pair, Settings],
) -> None:
    pair, settings = replicated
    try:
        async with serving(settings, read_max_lag_s=TOLERANT) as (_, http):
            parties = await file_parties(http)
            record = await stored_purchase(http, parties)
            pair.standby.stop()
            for _ in range(2):  # the failed connection, then the next read
                found = await search(http, record["orderNo"])
                assert [r["id"] for r in found.json()["items"]] == [record["id"]]
                assert source(found) == ("primary", 0.0, "unreachable")
            feed = await http.get("/api/v1/feed", headers=ADMIN)
            assert feed.status_code == 200
            assert record["id"] in {e["recordId"] for e in feed.json()["items"]}
            ready = await http.get("/readyz")
            assert ready.status_code == 200  # writes go on: the replica does not decide readiness
            assert ready.json()["readReplica"]["state"] == "unreachable"
            assert ready.json()["readReplica"]["lagSeconds"] is None
            assert "sw_read_replica_up 0.0" in (await http.get("/metrics", headers=ADMIN)).text

        async with serving(settings, read_max_lag_s=TOLERANT, read_fallback=False) as (_, http):
            for path in ("/api/v1/stats/summary", "/api/v1/feed", "/api/v1/records/export"):
                refused = await http.get(path, headers=ADMIN)
                assert refused.status_code == 503, (path, refused.text)
                assert refused.json()["code"] == "READ_REPLICA_UNAVAILABLE"
    finally:
        if not (pair.standby.data / "postmaster.pid").exists():
            pair.standby.start()
    await pair.caught_up()


async def test_without_a_replica_reads_say_they_come_from_the_primary(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/stats/summary", headers=ADMIN)
    assert answer.status_code == 200
    assert source(answer) == ("primary", 0.0, None)
    assert (await client.get("/readyz")).json()["readReplica"] is None


@with_replica
def test_the_pair_is_a_primary_and_its_standby(pair: Pair) -> None:
    assert pair.primary.psql("SELECT pg_is_in_recovery()") == "f"
    assert pair.standby.psql("SELECT pg_is_in_recovery()") == "t"


class Conflict:
    """Makes the standby cancel the next official's search with a recovery conflict, deterministically.

    A transaction on the primary REINDEXes an index of ``match_record`` (its AccessExclusiveLock on the index is
    written to the WAL, so the standby's startup process takes it too). The search on the standby locks the
    table, then — planning — waits for that index. The primary's transaction then locks the table itself: to
    replay that, the startup process needs the lock the waiting search holds, and with
    ``max_standby_streaming_delay = 0`` it cancels the search at once ("canceling statement due to conflict with
    recovery"). The primary's transaction rolls back: nothing changes."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.holder: asyncpg.Connection | None = None

    async def __aenter__(self) -> Conflict:
        self.pair.standby.psql("ALTER SYSTEM SET max_standby_streaming_delay = 0")
        self.pair.standby.psql("SELECT pg_reload_conf()")
        self.holder = await asyncpg.connect(self.pair.primary.url(DATABASE))
        await self.holder.execute("BEGIN; REINDEX INDEX ix_match_record_order_no")
        await self.pair.standby_shows(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE relation = 'ix_match_record_order_no'::regclass "
            "AND mode = 'AccessExclusiveLock' AND granted)"
        )
        return self

    async def search_waits(self) -> None:
        await self.pair.standby_shows(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE relation = 'ix_match_record_order_no'::regclass AND NOT granted)"
        )

    async def cancel(self) -> None:
        assert self.holder is not None
        await self.holder.execute("LOCK TABLE match_record IN ACCESS EXCLUSIVE MODE")
        await self.holder.execute("ROLLBACK")

    async def __aexit__(self, *_: object) -> None:
        if self.holder is not None:
            await self.holder.close()
        self.pair.standby.psql("ALTER SYSTEM RESET max_standby_streaming_delay")
        self.pair.standby.psql("SELECT pg_reload_conf()")


@with_replica
async def test_a_read_the_replica_cancels_is_answered_by_the_primary(replicated: tuple[Pair, Settings]) -> None:
    pair, settings = replicated
    async with serving(settings, read_max_lag_s=TOLERANT) as (_, http):
        parties = await file_parties(http)
        record = await stored_purchase(http, parties)
        await pair.caught_up()
        async with Conflict(pair) as conflict:
            searching = asyncio.create_task(
                http.get("/api/v1/records", params={"orderNo": record["orderNo"]}, headers=ADMIN)
            )
            await conflict.search_waits()
            await conflict.cancel()
            answer = await asyncio.wait_for(searching, 60)
        assert answer.status_code == 200, answer.text
        assert [r["id"] for r in answer.json()["items"]] == [record["id"]]
        assert source(answer) == ("primary", 0.0, "conflict")
        metrics = (await http.get("/metrics", headers=ADMIN)).text
        assert 'sw_routed_reads_total{reason="conflict",source="primary"} 1.0' in metrics
        # The next read goes to the replica again: a conflict says nothing about the replica's health.
        await pair.caught_up()
        assert source(await search(http, record["orderNo"])) == ("replica", 0.0, None)


@with_replica
async def test_a_read_the_replica_cancels_answers_503_without_fallback(replicated: tuple[Pair, Settings]) -> None:
    pair, settings = replicated
    async with serving(settings, read_max_lag_s=TOLERANT, read_fallback=False) as (_, http):
        async with Conflict(pair) as conflict:
            searching = asyncio.create_task(http.get("/api/v1/records", params={"orderNo": "x"}, headers=ADMIN))
            await conflict.search_waits()
            await conflict.cancel()
            answer = await asyncio.wait_for(searching, 60)
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "READ_REPLICA_UNAVAILABLE"
        assert "conflict with recovery" in answer.json()["detail"]
        assert answer.headers["Retry-After"] == "1"


def test_only_a_statement_cancelled_by_recovery_counts_as_a_conflict() -> None:
    class DriverError(Exception):
        def __init__(self, sqlstate: str) -> None:
            super().__init__(sqlstate)
            self.sqlstate = sqlstate

    def failed(sqlstate: str) -> DBAPIError:
        return DBAPIError("SELECT 1", {}, DriverError(sqlstate))

    assert recovery_conflict(failed("40001"))
    assert recovery_conflict(failed("40P01"))
    for other in ("23505", "57P01", "08006", "42P01"):  # a bug or an outage: never asked again of the primary
        assert not recovery_conflict(failed(other)), other
    raised_from = RuntimeError("while answering")
    raised_from.__cause__ = failed("40001")
    assert recovery_conflict(raised_from)
    assert not recovery_conflict(ValueError("no database involved"))
