"""Device states as Asterisk 22 computes and aggregates them (pure functions).

`Pbx` asks these for the state of a device (``PJSIP/201``, ``Local/100@ctx``,
``Stasis:lamp``) and keeps the cache and the ``DeviceStateChanged`` delivery
itself.  Sources:

- ``main/devicestate.c``: ``devstatestring`` (the names, in enum order),
  ``chan2dev`` / ``ast_state_chan2dev`` (a channel state as a device state),
  ``ast_devstate_aggregate_add`` / ``_result`` (several states as one),
  ``ast_devstate_val`` (a name as a state), ``ast_parse_device_state`` (the
  fallback for a driver that does not know);
- ``channels/chan_pjsip.c``, ``chan_pjsip_devicestate``: an endpoint's state
  from its registration and its channels;
- ``main/core_local.c``, ``local_devicestate``.
"""

from __future__ import annotations

from collections.abc import Iterable

UNKNOWN = "UNKNOWN"
NOT_INUSE = "NOT_INUSE"
INUSE = "INUSE"
BUSY = "BUSY"
INVALID = "INVALID"
UNAVAILABLE = "UNAVAILABLE"
RINGING = "RINGING"
RINGINUSE = "RINGINUSE"
ONHOLD = "ONHOLD"

# devstatestring (main/devicestate.c), in the order of enum ast_device_state
DEVICE_STATES = (UNKNOWN, NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD)

# res/res_stasis_device_state.c: the device name of an application's subscription to every
# device (``deviceState:`` with no name, or an application registered with subscribeAll)
DEVICE_STATE_ALL = "__AST_DEVICE_STATE_ALL_TOPIC"

# chan2dev (main/devicestate.c), by ast_state2str's names (main/channel.c)
_CHAN2DEV = {
    "Down": NOT_INUSE,
    "Rsrvd": INUSE,
    "OffHook": INUSE,
    "Dialing": INUSE,
    "Ring": INUSE,  # audible ringback tone
    "Ringing": RINGING,  # actual ringing
    "Up": INUSE,
    "Busy": BUSY,
    "Dialing Offhook": INUSE,
    "Pre-ring": RINGING,
}

# ast_devstate_aggregate_add's state_order: which state wins when several are added
_ORDER = {
    UNKNOWN: 1,
    NOT_INUSE: 3,
    INUSE: 6,
    BUSY: 7,
    INVALID: 0,
    UNAVAILABLE: 2,
    RINGING: 5,
    RINGINUSE: 8,
    ONHOLD: 4,
}

# channel states chan_pjsip_devicestate does not count as "in use" (for device_state_busy_at)
_IDLE_CHANNEL_STATES = ("Down", "Rsrvd")


def chan2dev(channel_state: str) -> str:
    """``ast_state_chan2dev``: ``Ring`` and ``Up`` are INUSE, ``Ringing`` RINGING, ``Down``
    NOT_INUSE; a state it does not list is UNKNOWN."""
    return _CHAN2DEV.get(channel_state, UNKNOWN)


def devstate_val(text: str) -> str:
    """``ast_devstate_val``: a state's name, any case, else UNKNOWN (``UNKNOWN`` itself too)."""
    upper = text.upper()
    return upper if upper in DEVICE_STATES else UNKNOWN


class Aggregate:
    """``struct ast_devstate_aggregate``: starts INVALID; a ringing state together with an
    in-use, on-hold or busy one is RINGINUSE, otherwise the state ranked highest wins
    (RINGINUSE > BUSY > INUSE > RINGING > ONHOLD > NOT_INUSE > UNAVAILABLE > UNKNOWN >
    INVALID)."""

    def __init__(self) -> None:
        self.state = INVALID
        self._ringing = False
        self._inuse = False

    def add(self, state: str) -> None:
        if state == RINGING:
            self._ringing = True
        elif state in (INUSE, ONHOLD, BUSY):
            self._inuse = True
        if self._ringing and self._inuse:
            self.state = RINGINUSE
        elif _ORDER[state] > _ORDER[self.state]:
            self.state = state


def aggregate(states: Iterable[str]) -> str:
    """The aggregate of ``states`` (INVALID for none)."""
    agg = Aggregate()
    for state in states:
        agg.add(state)
    return agg.state


def pjsip_devicestate(
    *,
    exists: bool,
    online: bool,
    channels: Iterable[tuple[str, bool]],
    busy_at: int = 0,
) -> str:
    """``chan_pjsip_devicestate`` for an endpoint and its channels' ``(state, on_hold)``.

    No such endpoint: INVALID.  No channel: UNAVAILABLE when the endpoint is
    offline (no contact), NOT_INUSE when online.  With channels: each counts
    as ONHOLD when on hold, else as ``chan2dev`` of its state, and their
    aggregate is the state -- whether or not the endpoint is registered; BUSY
    instead when ``device_state_busy_at`` (``busy_at``, 0: never) channels or
    more are neither Down nor Reserved.
    """
    if not exists:
        return INVALID
    state = NOT_INUSE if online else UNAVAILABLE
    agg = Aggregate()
    inuse = 0
    counted = False
    for channel_state, on_hold in channels:
        counted = True
        agg.add(ONHOLD if on_hold else chan2dev(channel_state))
        if channel_state not in _IDLE_CHANNEL_STATES:
            inuse += 1
    if not counted:
        return state
    if busy_at and inuse >= busy_at:
        return BUSY
    return agg.state if agg.state != INVALID else state


def parse_device_state(first_channel: tuple[str, bool] | None) -> str:
    """``ast_parse_device_state``: the state of the first channel named ``<device>-...``
    (``(state, on_hold)``), ONHOLD when it is held; UNKNOWN when there is none."""
    if first_channel is None:
        return UNKNOWN
    channel_state, on_hold = first_channel
    return ONHOLD if on_hold else chan2dev(channel_state)
