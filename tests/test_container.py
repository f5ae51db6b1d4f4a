"""The container image and the systemd units, as far as a machine without Docker can tell.

- The Dockerfile, read line by line: what it promises (a wheel built in one stage, the
  pinned lock installed with its hashes in the next, a non-root user in a writable state
  folder, a HEALTHCHECK on ``/readyz``, the entrypoint and default command); the build
  stage's COPY lines give a wheel with the same files as the checkout's.
- The image's runtime, for real: a venv made as the runtime stage makes it (the locks with
  ``--require-hashes``, then the wheels built by `tests.installed` with ``--no-deps``), made
  read-only, and ``contrib/docker-entrypoint.sh`` run in it as an unprivileged user whose
  only writable folder is the state folder (and a /tmp of its own, as a container has),
  with HOME missing: ``demo`` and ``run`` with a database serve (``/healthz``, ``/readyz``,
  the HEALTHCHECK's own command), and nothing was written anywhere else.  The ``*_FILE``
  secrets: read from files, never printed; an unreadable one stops with one line.
- The lock files cover pyproject.toml; compose.yaml wires what README.md says.
- The systemd units: ``systemd-analyze verify`` where it is installed, and their promises.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from asterisk_sim import AsteriskSimulator
from switchboard.config.model import AdminSection
from tests.installed import Installed, installed_switchboard

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "contrib" / "docker-entrypoint.sh"
UNITS = ROOT / "contrib" / "systemd"
STATE_DIR = "/var/lib/switchboard"
CONFIG_PATH = "/etc/switchboard/switchboard.yaml"
DEADLINE = 120.0  # s: a start (initdb included) or a stop taking longer is a failure
# where an unprivileged process can write besides its own folders
WORLD_WRITABLE = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))  # noqa: S108


# --- the Dockerfile, line by line -------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    stage: int  # 0: the first FROM's stage
    keyword: str  # upper case
    args: str

    def exec_form(self) -> list[str]:
        """A JSON array argument (``CMD ["run", ...]``)."""
        text = self.args
        for option in ("--interval", "--timeout", "--start-period", "--retries"):
            text = re.sub(rf"{option}=\S+\s*", "", text)
        if text.startswith("CMD "):
            text = text[4:]
        value = json.loads(text)
        assert isinstance(value, list), self
        return [str(v) for v in value]


def dockerfile() -> list[Instruction]:
    """The instructions: continuation lines joined, comments and blank lines left out."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines inside a continued instruction too
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def stage(index: int) -> list[Instruction]:
    instructions = dockerfile()
    last = max(i.stage for i in instructions)
    wanted = last if index == -1 else index
    return [i for i in instructions if i.stage == wanted]


def one(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"{keyword}: {found}"
    return found[0]


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for item in shlex.split(instruction.args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def runs(instructions: list[Instruction]) -> str:
    return "\n".join(i.args for i in instructions if i.keyword == "RUN")


def test_the_image_is_built_in_two_stages_from_the_wheel_and_the_hashed_lock() -> None:
    instructions = dockerfile()
    assert [i.keyword for i in instructions].count("FROM") >= 2
    build, runtime = stage(0), stage(-1)
    assert "pip wheel" in runs(build)
    assert "--no-deps" in runs(build)
    install = runs(runtime)
    assert "--require-hashes" in install
    assert "-r /tmp/locks/requirements.lock" in install
    assert re.search(r"--no-deps \$wheels", install), install
    assert "pip check" in install
    copies = [i.args for i in runtime if i.keyword == "COPY"]
    assert any(c.startswith("requirements") and ".lock" in c for c in copies), copies
    assert any(c.startswith("--from=build /wheels") for c in copies), copies
    assert "requirements-$extra.lock" in install  # --build-arg EXTRAS=demo adds its lock
    assert any(i.keyword == "ARG" and i.args.startswith("EXTRAS=") for i in runtime)


def test_the_image_runs_as_a_fixed_unprivileged_user_in_its_state_folder() -> None:
    runtime = stage(-1)
    user = [i.args for i in runtime if i.keyword == "USER"]
    assert user, "no USER: the image would run as root"
    uid, _, gid = user[-1].partition(":")
    assert uid.isdigit(), user  # numeric: Kubernetes' runAsNonRoot can check it
    assert int(uid) >= 1000, user
    assert gid.isdigit(), user
    assert int(gid) != 0, user
    assert f"--uid {uid}" in runs(runtime)  # the user exists (PostgreSQL, HOME need it)
    assert one(runtime, "WORKDIR").args == STATE_DIR
    assert f"-o {uid} -g {gid}" in runs(runtime)
    assert STATE_DIR in runs(runtime)
    assert env_of(runtime)["SWITCHBOARD_STATE_DIR"] == STATE_DIR
    assert "EXPOSE" not in [i.keyword for i in runtime]  # host networking: README.md


def test_the_healthcheck_asks_readyz_where_run_serves_its_admin_server() -> None:
    runtime = stage(-1)
    check = one(runtime, "HEALTHCHECK").exec_form()
    assert check[:2] == ["python", "-c"]
    assert "urllib.request" in check[2]
    assert "SWITCHBOARD_HEALTHCHECK_URL" in check[2]
    url = env_of(runtime)["SWITCHBOARD_HEALTHCHECK_URL"]
    assert url == f"http://{AdminSection().listen}/readyz"  # the admin server's default


def test_the_entrypoint_reads_secrets_and_the_default_command_runs_the_mounted_config() -> None:
    runtime = stage(-1)
    entrypoint = one(runtime, "ENTRYPOINT").exec_form()
    assert entrypoint == ["/usr/local/bin/docker-entrypoint.sh"]
    copies = [i.args.split() for i in runtime if i.keyword == "COPY"]
    assert any(c[-2:] == ["contrib/docker-entrypoint.sh", entrypoint[0]] for c in copies)
    assert one(runtime, "CMD").exec_form() == ["run", CONFIG_PATH]
    assert os.access(ENTRYPOINT, os.X_OK)


def dockerignored(name: str) -> bool:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(fnmatch(name, p) for p in patterns)


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {n for n in archive.namelist() if ".dist-info/" not in n}


def test_the_build_stage_copies_everything_the_wheels_are_made_of(tmp_path: Path) -> None:
    """A context of only what the build stage COPYs gives the checkout's own wheels."""
    installed = installed_switchboard()
    context = tmp_path / "src"
    context.mkdir()
    for instruction in stage(0):
        if instruction.keyword != "COPY":
            continue
        *sources, target = instruction.args.split()
        assert not any(s.startswith("--") for s in sources), instruction
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not dockerignored(source), f"COPY {source}: .dockerignore leaves it out"
            into = context / target / source if target.endswith("/") else context / target
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source, into, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
                )
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, into)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "w"), "."]
        + (["./sim"] if (context / "sim").is_dir() else []),
        cwd=context,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    built = {w.name: w for w in (tmp_path / "w").glob("*.whl")}
    assert sorted(built) == sorted(w.name for w in installed.wheels)
    for wheel in installed.wheels:
        assert wheel_names(built[wheel.name]) == wheel_names(wheel), wheel.name
    (production,) = [name for name in built if name.startswith("switchboard-")]
    assert "switchboard/_data/examples/office.yaml" in wheel_names(built[production])


# --- the lock files ---------------------------------------------------------------------


def lock_pins(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, how many hashes); every entry pinned with ``==`` and hashed."""
    pins: dict[str, tuple[str, int]] = {}
    text = path.read_text(encoding="utf-8")
    for entry in re.split(r"\n(?=\S)", text):
        if entry.startswith("#") or not entry.strip():
            continue
        first = entry.split("\\", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)(\s*;.*)?", first)
        assert match, f"{path.name}: not pinned: {first!r}"
        hashes = re.findall(r"--hash=sha256:[0-9a-f]{64}", entry)
        assert hashes, f"{path.name}: {first} has no hash"
        pins[canonicalize_name(match.group(1))] = (match.group(2), len(hashes))
    return pins


def test_the_locks_pin_and_hash_everything_pyproject_asks_for() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    ours = {canonicalize_name(project["name"])} | {
        canonicalize_name(tomllib.loads(p.read_text(encoding="utf-8"))["project"]["name"])
        for p in ROOT.glob("*/pyproject.toml")
    }
    production = lock_pins(ROOT / "requirements.lock")
    assert not ours & production.keys()  # ours are installed with --no-deps, never pinned
    wanted = {"": project["dependencies"]} | project.get("optional-dependencies", {})
    for extra, requirements in wanted.items():
        pins = dict(production)
        if extra:
            lock = ROOT / f"requirements-{extra}.lock"
            assert lock.exists(), f"no {lock.name}: run scripts/lock"
            pins |= lock_pins(lock)
        for line in requirements:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            if name in ours:
                continue
            assert name in pins, f"{requirement} is not in the lock: run scripts/lock"
            version = pins[name][0]
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{name}=={version} does not satisfy {requirement}: run scripts/lock"
            )


# --- the image's runtime, for real ------------------------------------------------------


@dataclass(frozen=True)
class Unprivileged:
    """Who the "container" runs as, and how to become them."""

    uid: int
    gid: int
    prefix: tuple[str, ...]  # setpriv ... as root; nothing when the tests are not root


def unprivileged() -> Unprivileged:
    if os.geteuid() != 0:
        return Unprivileged(os.getuid(), os.getgid(), ())  # already unprivileged
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot become nobody")
    nobody = pwd.getpwnam("nobody")
    prefix = (
        setpriv,
        f"--reuid={nobody.pw_uid}",
        f"--regid={nobody.pw_gid}",
        "--clear-groups",
    )
    return Unprivileged(nobody.pw_uid, nobody.pw_gid, prefix)


def usable_by_others(path: Path) -> bool:
    """Every folder above ``path`` can be passed, and ``path`` read and run, by anyone."""
    resolved = path.resolve()
    if not os.access(resolved, os.X_OK) or not resolved.stat().st_mode & stat.S_IXOTH:
        return False
    return all(p.stat().st_mode & stat.S_IXOTH for p in resolved.parents)


def python_for_others() -> Path:
    """A CPython 3.11 that the unprivileged user can run (a pyenv under /root is not)."""
    candidates = [
        Path(sys.executable),
        Path("/usr/bin/python3.11"),
        Path("/usr/local/bin/python3.11"),
    ]
    if os.geteuid() != 0:
        return Path(sys.executable)
    for candidate in candidates:
        if candidate.exists() and usable_by_others(candidate):
            probe = subprocess.run(
                [str(candidate), "-c", "import sys, venv; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0 and probe.stdout.strip() == "(3, 11)":
                return candidate
    pytest.skip(f"no CPython 3.11 that nobody can run (tried {', '.join(map(str, candidates))})")


def shared_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


@functools.cache
def copied_entrypoint() -> Path:
    """The entrypoint where the image has it (``COPY --chmod=0755`` to /usr/local/bin): a
    folder anyone may read, not the checkout, which may be private to its owner (a CI
    clone in a 0700 temporary folder)."""
    folder = shared_folder("switchboard-entrypoint-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = folder / "docker-entrypoint.sh"
    shutil.copyfile(ENTRYPOINT, copy)
    copy.chmod(0o555)
    return copy


def tree(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``folder``: (mode, size, mtime) by relative path."""
    found: dict[str, tuple[int, int, int]] = {}
    for path in [folder, *folder.rglob("*")]:
        info = path.lstat()
        found[str(path.relative_to(folder))] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return found


def owned_by(uid: int) -> set[Path]:
    """What ``uid`` has in the world-writable folders (one level down: all it can make there)."""
    found: set[Path] = set()
    for folder in WORLD_WRITABLE:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_uid == uid:
                        found.add(Path(entry.path))
    return found


@dataclass(frozen=True)
class Image:
    """The runtime stage's venv, read-only, and who runs it."""

    venv: Path
    who: Unprivileged
    snapshot: dict[str, tuple[int, int, int]]

    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def data(self, name: str) -> Path:
        found = list((self.venv / "lib").glob(f"python3.*/site-packages/switchboard/_data/{name}"))
        assert len(found) == 1, found
        return found[0]


def pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, (
        f"pip {' '.join(args)}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    )


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    """The venv as the Dockerfile's runtime stage makes it, with EXTRAS=demo; read-only."""
    who = unprivileged()
    base = python_for_others()
    installed: Installed = installed_switchboard()
    folder = shared_folder("switchboard-image-")
    venv = folder / "venv"
    try:
        subprocess.run([str(base), "-m", "venv", str(venv)], check=True, timeout=300)
        python = venv / "bin" / "python"
        locks = ["-r", str(ROOT / "requirements.lock")]
        if (ROOT / "requirements-demo.lock").exists():
            locks += ["-r", str(ROOT / "requirements-demo.lock")]
        pip(python, "install", "--require-hashes", *locks)
        pip(python, "install", "--no-deps", *map(str, installed.wheels))
        pip(python, "check")
        for path in [venv, *venv.rglob("*")]:  # as root-owned files are to uid 10001
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & ~0o222)
        yield Image(venv, who, tree(venv))
    finally:
        for path in [folder, *folder.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Container:
    """One "container": its state folder, its own /tmp, and how it is started."""

    image: Image
    state: Path
    tmp: Path
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": f"{self.image.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),  # not there, and nobody could make it
            "TMPDIR": str(self.tmp),  # a container's own /tmp
            "LANG": "C.UTF-8",
            "SWITCHBOARD_STATE_DIR": str(self.state),
            **extra,
        }

    def command(self, *args: str) -> list[str]:
        return [*self.image.who.prefix, str(copied_entrypoint()), *args]


@pytest.fixture
def container(image: Image) -> Iterator[Container]:
    base = shared_folder("switchboard-container-")
    state, tmp = base / "state", base / "tmp"
    for folder in (state, tmp):
        folder.mkdir(mode=0o750)
        os.chown(folder, image.who.uid, image.who.gid)
    before = owned_by(image.who.uid)
    try:
        yield Container(image, state, tmp, base / "home")
        # nothing written outside the state folder (and the container's own /tmp)
        assert tree(image.venv) == image.snapshot, "the read-only venv changed"
        assert not (base / "home").exists()
        if image.who.prefix:  # another user than the test's: all it owns is its doing
            assert owned_by(image.who.uid) - before == set()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.asynccontextmanager
async def started(
    container: Container, *args: str, env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The entrypoint with ``args``, as the unprivileged user, in the state folder."""
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            *container.command(*args),
            cwd=container.state,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.returncode is None:  # a failed test: its PostgreSQL too, if any
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def stopped(process: asyncio.subprocess.Process) -> int:
    """SIGTERM, as `docker stop` sends it; the exit code."""
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(DEADLINE):
        return await process.wait()


class Lines:
    """A process's stdout, read as it comes (so that it never blocks on a full pipe)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        self.stream = process.stdout
        self.lines: list[str] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self.stream.readline():
            self.lines.append(line.decode("utf-8", "replace"))
            self.changed.set()
        self.changed.set()

    async def until(self, pattern: str) -> re.Match[str]:
        async with asyncio.timeout(DEADLINE):
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                if self.task.done():
                    raise AssertionError(f"ended without {pattern!r}:\n{''.join(self.lines)}")
                self.changed.clear()
                await self.changed.wait()

    def text(self) -> str:
        return "".join(self.lines)


async def answer(url: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(url) as response,
    ):
        return response.status, await response.json()


async def ready(url: str, process: asyncio.subprocess.Process) -> Any:
    """``/readyz`` once it answers 200 (the runtime connected), within the deadline."""
    last: tuple[int, Any] | Exception | None = None
    try:
        async with asyncio.timeout(DEADLINE):
            while True:
                if process.returncode is not None:
                    raise AssertionError(f"exited ({process.returncode}) before it was ready")
                try:
                    last = await answer(url + "/readyz")
                except aiohttp.ClientConnectionError as exc:
                    last = exc  # not listening yet: the process is starting
                if isinstance(last, tuple) and last[0] == 200:
                    return last[1]
                await asyncio.sleep(0.05)  # pacing the asks, not waiting for a time
    except TimeoutError:
        raise AssertionError(f"not ready within {DEADLINE} s; last: {last!r}") from None


def healthcheck(container: Container, url: str) -> int:
    """The Dockerfile's HEALTHCHECK command, as the container's user: its exit code."""
    check = one(stage(-1), "HEALTHCHECK").exec_form()
    done = subprocess.run(
        [*container.image.who.prefix, str(container.image.python()), *check[1:]],
        env=container.env(SWITCHBOARD_HEALTHCHECK_URL=url),
        cwd=container.state,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.asyncio
async def test_the_demo_serves_as_an_unprivileged_user_writing_only_its_state_folder(
    container: Container, tmp_path: Path
) -> None:
    if not (ROOT / "requirements-demo.lock").exists():
        pytest.skip("no demo extra: the image has no demo")
    env = container.env()
    args = ("demo", "--stay", "--admin-listen", "127.0.0.1:0")
    async with started(container, *args, env=env, log=tmp_path / "stderr") as process:
        out = Lines(process)
        url = (await out.until(r"Wallboard at (http://127\.0\.0\.1:\d+)/wallboard")).group(1)
        assert await answer(url + "/healthz") == (200, {"status": "ok"})
        assert await ready(url, process) == {
            "ready": True,
            "checks": {"ari": "ok", "database": "ok"},
        }
        assert await asyncio.to_thread(healthcheck, container, url + "/readyz") == 0
        unused = f"http://127.0.0.1:{closed_port()}/readyz"
        assert await asyncio.to_thread(healthcheck, container, unused) != 0
        await out.until(r"Still serving the wallboard")  # the calls are done
        assert await stopped(process) == 0
        async with asyncio.timeout(DEADLINE):
            await out.task
    stderr = (tmp_path / "stderr").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in stderr, stderr
    assert "PermissionError" not in stderr, stderr
    assert re.search(r"\b[1-9]\d* call records in PostgreSQL", out.text()), out.text()
    database = container.state / ".switchboard-demo"
    assert database.is_dir()
    assert database.stat().st_uid == container.image.who.uid
    assert not (database / "postmaster.pid").exists()  # its PostgreSQL stopped with it


@pytest.mark.asyncio
async def test_run_with_a_database_and_secret_files_spills_into_the_state_folder(
    container: Container, db: str, tmp_path: Path
) -> None:
    user, password = "switchboard", "s3cret-ari-password"
    secrets = shared_folder("switchboard-secrets-")
    conf = shared_folder("switchboard-etc-")
    try:
        (secrets / "ari_password").write_text(password + "\n", encoding="utf-8")
        # the test cluster trusts loopback: a password is there to be kept out of sight
        dsn = db
        if urlsplit(db).password is None:
            dsn = re.sub(r"^(postgres(?:ql)?://[^:@/]+)@", r"\g<1>:s3cret-db-password@", db)
        db_password = urlsplit(dsn).password
        assert db_password, dsn
        (secrets / "dsn").write_text(dsn + "\n", encoding="utf-8")
        config = conf / "switchboard.yaml"  # mounted read-only at /etc/switchboard/
        shutil.copy(container.image.data("examples/office.yaml"), config)
        for path in (secrets / "ari_password", secrets / "dsn", config):
            path.chmod(0o444)
        port = closed_port()
        env = container.env(
            SWITCHBOARD_ARI_USER=user,
            SWITCHBOARD_ARI_PASSWORD_FILE=str(secrets / "ari_password"),
            SWITCHBOARD_DSN_FILE=str(secrets / "dsn"),
            SWITCHBOARD_ADMIN_LISTEN=f"127.0.0.1:{port}",
        )
        async with AsteriskSimulator(user=user, password=password) as sim:
            env["SWITCHBOARD_ARI_URL"] = sim.url
            log = tmp_path / "stderr"
            async with started(container, "run", str(config), env=env, log=log) as process:
                out = Lines(process)
                url = f"http://127.0.0.1:{port}"
                body = await ready(url, process)
                assert body == {"ready": True, "checks": {"ari": "ok", "database": "ok"}}
                assert await answer(url + "/healthz") == (200, {"status": "ok"})
                assert await asyncio.to_thread(healthcheck, container, url + "/readyz") == 0
                spill = container.state / "spill"  # database.spill_dir, relative
                assert spill.is_dir()
                assert spill.stat().st_uid == container.image.who.uid
                assert await stopped(process) == 0
                async with asyncio.timeout(DEADLINE):
                    await out.task
        printed = out.text() + log.read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in printed, printed
        assert password not in printed
        assert db_password not in printed
    finally:
        shutil.rmtree(secrets, ignore_errors=True)
        shutil.rmtree(conf, ignore_errors=True)


# --- the entrypoint's refusals (no venv needed: it stops before `switchboard`) -----------


def entrypoint(who: Unprivileged, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*who.prefix, str(copied_entrypoint()), "run", CONFIG_PATH],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def secret_dir() -> Iterator[Path]:
    folder = shared_folder("switchboard-secret-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_an_unreadable_secret_file_stops_the_start_with_one_line(secret_dir: Path) -> None:
    who = unprivileged()
    secret = secret_dir / "dsn"
    secret.write_text("postgresql://switchboard:do-not-print@db/switchboard\n", encoding="utf-8")
    secret.chmod(0o000 if os.geteuid() != 0 else 0o600)  # root's, mode 0600: not the user's
    done = entrypoint(who, {"SWITCHBOARD_DSN_FILE": str(secret)})
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "SWITCHBOARD_DSN_FILE" in lines[0]
    assert str(secret) in lines[0]
    assert "do-not-print" not in done.stderr


def test_a_missing_secret_file_and_a_doubled_secret_each_stop_with_one_line(
    secret_dir: Path,
) -> None:
    who = unprivileged()
    missing = secret_dir / "ari_password"
    done = entrypoint(who, {"SWITCHBOARD_ARI_PASSWORD_FILE": str(missing)})
    assert (done.returncode, done.stdout, len(done.stderr.splitlines())) == (2, "", 1)
    assert "SWITCHBOARD_ARI_PASSWORD_FILE" in done.stderr
    assert str(missing) in done.stderr

    missing.write_text("hunter2-ari\n", encoding="utf-8")
    missing.chmod(0o444)
    doubled = {"SWITCHBOARD_ARI_PASSWORD_FILE": str(missing), "SWITCHBOARD_ARI_PASSWORD": "x"}
    done = entrypoint(who, doubled)
    assert (done.returncode, done.stdout, len(done.stderr.splitlines())) == (2, "", 1)
    assert "both SWITCHBOARD_ARI_PASSWORD and SWITCHBOARD_ARI_PASSWORD_FILE" in done.stderr
    assert "hunter2" not in done.stderr


def test_the_entrypoint_exports_the_file_and_hides_the_file_variable(secret_dir: Path) -> None:
    """What `switchboard` gets: the value without its newline, no *_FILE left over."""
    who = unprivileged()
    secret = secret_dir / "ari_password"
    secret.write_text("pass word $HOME `x`\n\n", encoding="utf-8")
    secret.chmod(0o444)
    fake = secret_dir / "bin"
    fake.mkdir(mode=0o755)
    (fake / "switchboard").write_text(
        "#!/bin/sh\n"
        'printf "%s|%s|%s|%s\\n" "$SWITCHBOARD_ARI_PASSWORD" '
        '"${SWITCHBOARD_ARI_PASSWORD_FILE-unset}" "$(pwd)" "$*"\n',
        encoding="utf-8",
    )
    (fake / "switchboard").chmod(0o755)
    done = subprocess.run(
        [*who.prefix, str(copied_entrypoint()), "run", CONFIG_PATH],
        env={
            "PATH": f"{fake}:/usr/bin:/bin",
            "SWITCHBOARD_ARI_PASSWORD_FILE": str(secret),
            "SWITCHBOARD_STATE_DIR": str(secret_dir),
        },
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"pass word $HOME `x`|unset|{secret_dir}|run {CONFIG_PATH}\n"


# --- compose.yaml -----------------------------------------------------------------------


def test_compose_runs_postgres_then_migrate_then_switchboard() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    postgres, migrate, app = services["postgres"], services["migrate"], services["switchboard"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert migrate["command"] == ["db", "migrate"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert app["command"] == ["run", CONFIG_PATH]
    assert app["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert app["network_mode"] == "host"
    assert f"./switchboard.yaml:{CONFIG_PATH}:ro" in app["volumes"]
    assert any(v.endswith(f":{STATE_DIR}") for v in app["volumes"])
    for service in (migrate, app):
        for key, value in service["environment"].items():
            assert key.endswith("_FILE"), f"{key}: secrets come as files"
            name = value.removeprefix("/run/secrets/")
            assert name in service["secrets"], key
            assert name in compose["secrets"], key
    assert "SWITCHBOARD_ARI_PASSWORD_FILE" in app["environment"]
    assert "SWITCHBOARD_DSN_FILE" in app["environment"]


# --- the systemd units ------------------------------------------------------------------


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (UNITS / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


@pytest.mark.parametrize(
    ("name", "command"), [("switchboard.service", "run"), ("switchboard-agi.service", "agi")]
)
def test_the_units_notify_reload_and_run_confined(name: str, command: str) -> None:
    service = unit(name)["Service"]
    assert service["Type"] == ["notify"]
    assert service["User"] == ["switchboard"]
    assert service["StateDirectory"] == ["switchboard"]
    assert service["WorkingDirectory"] == [STATE_DIR]
    assert service["EnvironmentFile"] == ["-/etc/switchboard/switchboard.env"]
    assert service["ExecStart"] == [f"/usr/bin/switchboard {command} {CONFIG_PATH}"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["Restart"] == ["on-failure"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ReadWritePaths": STATE_DIR,
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet": "",
    }.items():
        assert service.get(key) == [value], key
    assert "WatchdogSec" not in service  # Switchboard sends no WATCHDOG=1
    assert unit(name)["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize("name", ["switchboard.service", "switchboard-agi.service"])
def test_systemd_analyze_verifies_the_units(name: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    program = Path(sys.executable).parent / "switchboard"
    assert program.exists(), program
    # the unit as installed, its program where this machine has it
    text = (UNITS / name).read_text(encoding="utf-8")
    (tmp_path / name).write_text(
        text.replace("/usr/bin/switchboard", str(program)), encoding="utf-8"
    )
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == "", done.stdout + done.stderr  # no key it ignores
