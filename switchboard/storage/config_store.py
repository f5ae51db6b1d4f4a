"""Configuration versions in PostgreSQL: import, the current version, and watching it.

`import_config` checks a file exactly as ``switchboard check`` does and stores
it as a new version in one transaction: the ``config_versions`` row, the
version's ``employees`` / ``departments`` / ``numbers`` rows (numbers and
mobiles normalised to full international digits, as calls see them), and a
``NOTIFY switchboard_config, '<version id>'`` that PostgreSQL delivers when the
transaction commits.  A version is identified by the SHA-256 of its data
(`canonical_form`: comments and layout do not count), so importing the same
configuration again, or its export, stores nothing.

Which version is current is kept apart, in ``config_activations``: importing a new
version adds a row, and so does `activate_config` (``switchboard config
activate N``, the admin API), which makes any stored version current again -- a
roll-back.  Importing an older version's data again activates that version.  The
newest row names the current version, and the rows are the history.  Imports and
activations take one transaction-level advisory lock, so the rows follow commit
order.

`ConfigWatcher` keeps the current `Company` for a running app: it LISTENs on its
own connection and loads each new version as it is committed.  The runtime asks
it for the company once per new call, so a call keeps the version it started
with and new calls get the new one; nothing is dropped.  A version that does not
load is logged and skipped (the running one stays); a lost connection is
reconnected with backoff and the current version read again, since a NOTIFY sent
while it was away is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from switchboard.config.company import Company
from switchboard.config.export import canonical_form
from switchboard.config.load import LoadResult, load_text
from switchboard.config.problems import ConfigError, Problem
from switchboard.storage.listener import Listener

log = structlog.get_logger("switchboard.storage")

CHANNEL = "switchboard_config"
IMPORT_LOCK = 7_300_002  # pg_advisory_xact_lock key: "switchboard config import"

# what a lost or refused connection raises: retried, never fatal for a running app


class ConfigRejected(ConfigError):
    """The configuration has errors; nothing was stored.  `lines` are ``check``'s."""

    error_id = "config.rejected"

    @property
    def lines(self) -> list[str]:
        """Every problem as ``FILE:LINE: message``, warnings included, as ``check`` prints."""
        return [problem.format(self.filename) for problem in self.problems]


class NoSuchVersion(LookupError):
    """``activate`` named a version the database does not hold."""

    error_id = "config.no_such_version"

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(f"no version {version} stored")


class NoConfigStored(LookupError):
    """The database holds no configuration version yet (``switchboard config import``)."""

    error_id = "config.none_stored"


@dataclass(frozen=True, slots=True)
class ImportResult:
    version: int
    created: bool  # False: the same configuration was stored already (as ``version``)
    sha256: str
    warnings: tuple[Problem, ...] = ()
    activated: bool = True  # False: it was the current version already; nothing changed


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version as lists show it: ``current``, and when it last became current."""

    id: int
    created_at: dt.datetime
    source: str
    sha256: str
    comment: str | None
    current: bool
    activated_at: dt.datetime | None  # the last time it became current
    activated_by: str | None

    def as_json(self) -> dict[str, Any]:
        """As `config list --json` and the admin API show it."""
        return {
            "version": self.id,
            "created_at": self.created_at.isoformat(),
            "source": self.source,
            "sha256": self.sha256,
            "comment": self.comment,
            "current": self.current,
            "activated_at": self.activated_at.isoformat() if self.activated_at else None,
            "activated_by": self.activated_by,
        }


@dataclass(frozen=True, slots=True)
class Activation:
    """What `activate_config` did: ``changed`` is False when it was current already."""

    version: int
    changed: bool
    previous: int | None


@dataclass(frozen=True, slots=True)
class StoredConfig:
    """One row of ``config_versions``."""

    id: int
    created_at: dt.datetime
    source: str
    sha256: str
    yaml: str
    comment: str | None

    @property
    def label(self) -> str:
        """The name problems and logs give this version: ``examples/office.yaml@v3``."""
        return f"{self.source}@v{self.id}"


def config_sha256(text: str) -> str:
    """The fingerprint of a configuration's data (``config_versions.sha256``)."""
    return hashlib.sha256(canonical_form(text).encode("utf-8")).hexdigest()


async def import_config(
    conn: asyncpg.Connection, text: str, source: str, comment: str | None = None
) -> ImportResult:
    """Check ``text`` as ``switchboard check`` does and store it as the new current version.

    Raises `ConfigRejected` (the problems, at ``source``'s lines) when it has
    errors; nothing is stored then.  A configuration stored already is not
    stored again (``created=False``): an older version becomes the current one
    again (an activation by ``import``), the current one changes nothing
    (``activated=False``).
    """
    loaded = await asyncio.to_thread(load_text, text, source)
    if loaded.company is None:
        raise ConfigRejected(source, loaded.problems)
    company = loaded.company
    warnings = tuple(loaded.problems)
    digest = config_sha256(text)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", IMPORT_LOCK)
        same = await conn.fetchrow(
            """SELECT id, (SELECT version FROM config_current) AS current
               FROM config_versions WHERE sha256 = $1""",
            digest,
        )
        if same is not None:
            stored: int = same["id"]
            if stored == same["current"]:
                return ImportResult(
                    stored, created=False, sha256=digest, warnings=warnings, activated=False
                )
            await _activate(conn, stored, "import", comment)
        else:
            stored = await conn.fetchval(
                """INSERT INTO config_versions (source, sha256, yaml, comment)
                   VALUES ($1, $2, $3, $4) RETURNING id""",
                source,
                digest,
                text,
                comment,
            )
            await _store_directory(conn, stored, company)
            await _activate(conn, stored, "import", None)
    if same is not None:
        log.info("config version current again", version=stored, source=source, by="import")
    else:
        log.info("config imported", version=stored, source=source)
    return ImportResult(stored, created=same is None, sha256=digest, warnings=warnings)


async def activate_config(
    conn: asyncpg.Connection, version: int, by: str, comment: str | None = None
) -> Activation:
    """Make stored version ``version`` the current one (a roll-back, or forward again).

    It is checked first with this release's rules, as a running app would load
    it: `ConfigRejected` when it does not load (a version stored by an older
    release), `NoSuchVersion` when there is none; nothing changes then.
    Running apps take it for new calls, as they take an import.
    """
    stored = await stored_config(conn, version)
    if stored is None:
        raise NoSuchVersion(version)
    loaded = await load_stored(stored)
    if loaded.company is None:
        raise ConfigRejected(stored.label, loaded.problems)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", IMPORT_LOCK)
        previous: int | None = await conn.fetchval("SELECT version FROM config_current")
        if previous == version:
            return Activation(version, changed=False, previous=previous)
        await _activate(conn, version, by, comment)
    log.info("config version activated", version=version, previous=previous, by=by)
    return Activation(version, changed=True, previous=previous)


async def _activate(conn: asyncpg.Connection, version: int, by: str, comment: str | None) -> None:
    """Within the caller's locked transaction: ``version`` is current from its commit."""
    await conn.execute(
        """INSERT INTO config_activations (config_version, activated_by, comment)
           VALUES ($1, $2, $3)""",
        version,
        by,
        comment,
    )
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(version))


async def list_versions(conn: asyncpg.Connection, limit: int) -> list[VersionInfo]:
    """The stored versions, newest first, with the current one marked."""
    rows = await conn.fetch(
        """SELECT v.id, v.created_at, v.source, v.sha256, v.comment,
                  v.id IS NOT DISTINCT FROM (SELECT version FROM config_current) AS current,
                  a.activated_at, a.activated_by
           FROM config_versions v
           LEFT JOIN LATERAL (
               SELECT activated_at, activated_by FROM config_activations
               WHERE config_version = v.id ORDER BY id DESC LIMIT 1
           ) a ON true
           ORDER BY v.id DESC LIMIT $1""",
        limit,
    )
    return [
        VersionInfo(
            r["id"],
            r["created_at"],
            r["source"],
            r["sha256"],
            r["comment"],
            bool(r["current"]),
            r["activated_at"],
            r["activated_by"],
        )
        for r in rows
    ]


async def _store_directory(conn: asyncpg.Connection, version: int, company: Company) -> None:
    config = company.config
    employees = [
        (
            version,
            e.id,
            e.name,
            e.extension,
            company.normalize(e.mobile) if e.mobile is not None else None,
            e.forward_to_mobile_after,
            list(e.skills),
        )
        for e in config.employees
    ]
    departments = [
        (
            version,
            d.id,
            d.name,
            d.extension,
            d.strategy,
            d.ring_delay,
            d.ring_timeout,
            list(d.members),
        )
        for d in config.departments
    ]
    numbers = [
        (
            version,
            position,
            company.normalize(entry.number) if entry.number is not None else None,
            entry.line,
            entry.scenario,
        )
        for position, entry in enumerate(config.numbers)
    ]
    if employees:
        await conn.executemany(
            """INSERT INTO employees (config_version, id, name, extension, mobile,
                                      forward_to_mobile_after, skills)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            employees,
        )
    if departments:
        await conn.executemany(
            """INSERT INTO departments (config_version, id, name, extension, strategy,
                                        ring_delay, ring_timeout, members)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            departments,
        )
    if numbers:
        await conn.executemany(
            """INSERT INTO numbers (config_version, position, number, line, scenario)
               VALUES ($1, $2, $3, $4, $5)""",
            numbers,
        )


async def stored_config(
    conn: asyncpg.Connection, version: int | None = None
) -> StoredConfig | None:
    """A stored version (default: the current one), or None."""
    row = await conn.fetchrow(
        """SELECT id, created_at, source, sha256, yaml, comment
           FROM config_versions WHERE id = coalesce($1, (SELECT version FROM config_current))""",
        version,
    )
    if row is None:
        return None
    return StoredConfig(
        row["id"], row["created_at"], row["source"], row["sha256"], row["yaml"], row["comment"]
    )


async def load_stored(stored: StoredConfig) -> LoadResult:
    """A stored version loaded with this release's checks (off the event loop)."""
    return await asyncio.to_thread(load_text, stored.yaml, stored.label)


async def current_config(conn: asyncpg.Connection) -> tuple[int, str, Company] | None:
    """The current version: its id, YAML text and loaded company; None when none is stored.

    Raises `ConfigError` when the stored text does not load with this release.
    """
    stored = await stored_config(conn)
    if stored is None:
        return None
    company = (await load_stored(stored)).raise_for_errors()
    return stored.id, stored.yaml, company


class ConfigWatcher(Listener):
    """The current `Company` of a running app, following new versions as they are committed.

    ``company`` is the callable `AriRuntime` takes: each new call asks once and
    keeps what it got.  ``version`` is the loaded version's id; ``changed`` is
    notified whenever ``version``, ``rejected``, ``connected`` or
    ``connect_failures`` change (`wait_for_version`, `wait_until`).
    """

    channel = CHANNEL
    name = "config listener"

    def __init__(
        self,
        *,
        backoff_first: float = 0.5,
        backoff_max: float = 30.0,
        health_every: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            backoff_first=backoff_first,
            backoff_max=backoff_max,
            health_every=health_every,
            connect_timeout=connect_timeout,
        )
        self.version: int | None = None
        self.rejected: int | None = None  # the newest version that failed to load
        self._company: Company | None = None

    def company(self) -> Company:
        """The current snapshot (fit to pass as `AriRuntime`'s ``company``)."""
        if self._company is None:
            raise RuntimeError("no configuration loaded: await ConfigWatcher.start() first")
        return self._company

    async def start(self, dsn: str) -> None:
        """Connect, LISTEN and load the current version, then follow it in the background.

        Raises what connecting raises, `NoConfigStored`, or `ConfigError` when
        the current version does not load: an app cannot start without one.
        """
        if self._task is not None:
            raise RuntimeError("the watcher is already running")
        self._dsn = dsn
        conn = await self._listen()
        started = False
        try:
            await self._reload(conn, strict=True)
            started = True
        finally:
            if not started:
                await self._discard(conn)
        self._follow_in_background(conn, "config-watcher")

    async def wait_for_version(self, version: int) -> Company:
        """Until version ``version`` is the loaded one; bound it with a timeout."""
        await self.wait_until(lambda w: w.version == version)
        return self.company()

    async def _resync(self, conn: asyncpg.Connection) -> None:
        await self._reload(conn)  # a NOTIFY may have come while we were away

    async def _handle(self, conn: asyncpg.Connection, payload: str) -> None:
        """Reload on a notification -- once for all that have come meanwhile."""
        while not self._inbox.empty():
            self._inbox.get_nowait()
        if not conn.is_closed():
            await self._reload(conn)

    def _reconnected_fields(self) -> dict[str, Any]:
        return {"version": self.version}

    async def _reload(self, conn: asyncpg.Connection, *, strict: bool = False) -> None:
        """Load the current version unless it runs already (or was refused before).

        ``strict`` (at start): raise instead of keeping the running version.
        """
        stored = await stored_config(conn)
        if stored is None:
            if strict:
                raise NoConfigStored("no configuration stored: run `switchboard config import`")
            return
        if stored.id in (self.version, self.rejected):
            return
        try:
            loaded = await load_stored(stored)
        except Exception:  # a loader crash on one stored text must not stop the watcher
            if strict:
                raise
            log.exception("config version crashed the loader", version=stored.id)
            self.rejected = stored.id
            await self._notify()
            return
        if loaded.company is None:
            if strict:
                raise ConfigError(stored.label, loaded.problems)
            log.error(
                "config version does not load: keeping the running one",
                version=stored.id,
                running=self.version,
                problems=[p.format(stored.label) for p in loaded.errors],
            )
            self.rejected = stored.id
            await self._notify()
            return
        previous = self._company
        if previous is not None and previous.config.asterisk != loaded.company.config.asterisk:
            log.warning(
                "config version changes the asterisk: section: restart to apply it",
                version=stored.id,
            )
        log.info("config version loaded", version=stored.id, previous=self.version)
        self._company = dataclasses.replace(loaded.company, config_version=stored.id)
        self.version = stored.id
        await self._notify()


@contextlib.asynccontextmanager
async def watching(dsn: str, **options: Any) -> AsyncIterator[ConfigWatcher]:
    """``async with watching(dsn) as watcher``: started, and stopped however the block ends."""
    watcher = ConfigWatcher(**options)
    await watcher.start(dsn)
    try:
        yield watcher
    finally:
        await watcher.stop()
