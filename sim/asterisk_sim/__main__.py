"""``python -m asterisk_sim``: the Asterisk simulator on its own, until SIGINT or SIGTERM.

    python -m asterisk_sim [--host 127.0.0.1] [--port 8088] [--user switchboard]
        [--password X] [--scale 1.0] [--durations-from examples/call-centre.yaml]
        [--gc-freeze SECONDS]

It prints its URL on stdout (one line, ``http://127.0.0.1:8088``; with
``--port 0`` the port is any free one) and serves ARI under ``/ari`` and the
control API under ``/_sim`` (`asterisk_sim.server`): another process places
calls, scripts the phones and reads the request log over HTTP.  That keeps the
simulator's CPU and memory apart from the app's, as ``bench/ari_load.py`` needs.
The defaults are those ``switchboard run`` uses with an ``asterisk:`` section
left out (``http://127.0.0.1:8088``, user and password from
``SWITCHBOARD_ARI_USER`` / ``SWITCHBOARD_ARI_PASSWORD``, else ``switchboard``),
so the two meet without options.  A password is required, as in Asterisk:
res/ari/config.c loads no ari.conf user without one (``user_apply``) and
refuses an empty one (``ari_conf_validate_user``).

``--scale`` is real seconds per simulated second (0.02 plays a minute in 1.2 s);
the app must run on the same scale.  ``--durations-from CONFIG`` plays each
prompt for as long as that company's config says, as ``switchboard simulate``
does (otherwise 3 s a prompt).  ``--gc-freeze SECONDS`` moves what survived
into Python's permanent GC generation every SECONDS: the simulator keeps every
channel, request and event it has seen, and without this its full collections
grow with them (100 ms and more after a thousand calls), which a benchmark would
count as the app's latency; cyclic garbage older than that is never freed.
Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from asterisk_sim.simulator import AsteriskSimulator
from switchboard.clock import Clock, ScaledClock
from switchboard.config.problems import ConfigError
from switchboard.logs import configure_logging


def _durations(config: Path | None) -> Mapping[str, float] | None:
    if config is None:
        return None
    # the demo module brings the ARI runtime along: load it only when asked
    from switchboard.config.load import load_company  # noqa: PLC0415
    from switchboard.demo import prompt_durations  # noqa: PLC0415

    return prompt_durations(load_company(config))


async def _freeze_every(seconds: float) -> None:
    while True:
        gc.freeze()
        await asyncio.sleep(seconds)


async def _serve(args: argparse.Namespace, durations: Mapping[str, float] | None) -> None:
    clock = Clock() if args.scale == 1.0 else ScaledClock(args.scale)
    sim = AsteriskSimulator(
        clock=clock, user=args.user, password=args.password, app_durations=durations
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start(args.host, args.port)
    freezer = asyncio.create_task(_freeze_every(args.gc_freeze)) if args.gc_freeze else None
    try:
        print(sim.url, flush=True)
        await stop.wait()
    finally:
        if freezer is not None:
            freezer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await freezer
        await sim.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m asterisk_sim",
        description="Run the Asterisk simulator (ARI over HTTP and websocket) until stopped.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8088, help="0: any free port")
    parser.add_argument(
        "--user",
        default=os.environ.get("SWITCHBOARD_ARI_USER", "switchboard"),
        help="the ARI user (default $SWITCHBOARD_ARI_USER, else switchboard)",
    )
    parser.add_argument(
        "--password",
        default=os.environ.get("SWITCHBOARD_ARI_PASSWORD", ""),
        help="the ARI user's password (default $SWITCHBOARD_ARI_PASSWORD; required)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="real seconds per simulated second"
    )
    parser.add_argument(
        "--durations-from",
        type=Path,
        metavar="CONFIG",
        help="prompt lengths from this company config",
    )
    parser.add_argument(
        "--gc-freeze",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="freeze the GC's survivors this often (0: never): short pauses under load",
    )
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    if args.gc_freeze < 0:
        parser.error("--gc-freeze must not be negative")
    if not args.password:  # res/ari/config.c, user_apply: "User missing password"
        parser.error(
            "give --password or set SWITCHBOARD_ARI_PASSWORD: "
            "Asterisk takes no ARI user without one"
        )
    configure_logging(json_output=False, level="warning")
    try:
        durations = _durations(args.durations_from)
    except (OSError, ConfigError) as error:
        print(f"python -m asterisk_sim: {args.durations_from}: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args, durations))
    except OSError as error:  # the port is taken, the address is not ours
        print(f"python -m asterisk_sim: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
