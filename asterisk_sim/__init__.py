"""A test double of Asterisk 22 that speaks real ARI (HTTP + websocket).

Tests and ``switchboard demo`` run it in-process (`AsteriskSimulator`); the
ARI client talks to it over real sockets exactly as to Asterisk.  Every
scripted delay (answer after N s, prompt lengths, a caller's key presses, hang
ups) is in seconds of the `switchboard.clock.Clock` it is given.

Modules: `simulator` (the Python API), `server` (ARI routes, auth, request
log, the ``/_sim`` control API), `pbx` (state changes and who hears which
event), `model` (resources and their ARI snapshots), `events` (event
builders), `applications` (Stasis apps, websockets, event filters), `script`
(endpoint and caller behaviour), `spec` (the ARI spec as data, validation).

What is modelled, and from where
================================

Sources: the Asterisk source (``res/ari/resource_channels.c``,
``res/stasis/control.c``, ``main/bridge_channel.c``, ``main/channel.c``,
``res/res_stasis_playback.c``), the 22.10.1 ``rest-api`` JSON (a copy in
``asterisk_sim/ari_spec``), and reports on node-ari-client issues #92, #96, #148
(create+dial behaviour) and the Asterisk wiki's event examples.

Inbound call (``place_call``): the channel is created in state ``Ring``
(``PJSIP/trunk-0000000N``, or ``DAHDI/<line>-1``), dialplan
``{context: from-trunk|from-analog, exten: called|s, priority: 1,
app_name: Stasis, app_data: "app,args"}``, and ``StasisStart`` (args: the
called number, or ``app_args``; DAHDI without calledID: ``[]``) goes to the
app.  No app connected: ``Stasis()`` fails as in Asterisk; the channel is
kept with ``stasis_failed`` (the dialplan's fallback), no event is sent.

Answer: ``ChannelStateChange`` Ring -> Up.  ``/ring``, ``/hold``, ``/mute``,
``/silence``, ``/progress`` change nothing visible.

``POST /channels/create`` (resource_channels.c, ast_ari_channels_create):
the channel is created ``Down`` and put into Stasis at once, before any dial.
The HTTP answer is the snapshot taken before Stasis starts (``app_name`` ""),
then ``StasisStart`` (state ``Down``, args = ``appArgs`` split on commas)
follows on the websocket -- it may arrive before the HTTP response, so pass
``channelId``.  No ``ChannelCreated`` (the app subscribes after creation).

``POST /channels/{id}/dial`` (control.c, app_control_dial; bridge_channel.c,
bridge_handle_trip): 409 unless the channel was created by ARI and is
``Down``.  ``Dial {peer, dialstring: <resource>, dialstatus: ""}`` at once;
then ``ChannelStateChange`` Ringing + ``Dial RINGING``; on answer
``ChannelStateChange`` Up + ``Dial ANSWER``.  Asterisk never puts ``caller`` in
these Dial events (it passes NULL); ``?caller=`` only copies the caller's
caller-id into the peer's ``connected`` and its language.  Failures, by the
endpoint's script: busy -> ``Dial BUSY``, offline -> ``Dial CHANUNAVAIL``,
congestion -> ``Dial CONGESTION``, dial timeout passed (``timeout`` > 0) ->
``Dial NOANSWER``; each then ``ChannelHangupRequest {cause}``, ``StasisEnd``,
``ChannelDestroyed {cause 17 | 20 | 34 | 19}``.  (A real PJSIP leg often
sends no final Dial status at all -- a 486 only sets the hangup cause and a
dial timeout is a soft hangup -- so clients must take ``ChannelDestroyed``'s
cause as the truth.)  ``noanswer`` rings until hung up or timed out.

``POST /channels`` (originate): the app is subscribed at once and sees the
same Dial/state events; ``StasisStart`` comes only after the answer (state
Up).  A failed originate ends with ``ChannelDestroyed`` and no Stasis events.
Default timeout 30 s, -1 for none.  ``Local/exten@ctx`` makes ``;1`` and
``;2`` channels; the app sees ``;1``.

Hang up: ``DELETE /channels/{id}`` gives ``ChannelHangupRequest {cause: 32,
soft: true}`` (ast_softhangup publishes the AST_SOFTHANGUP_EXPLICIT flag as
"cause"), then the teardown with the requested cause (default 16); a far-end
hang up gives ``ChannelHangupRequest {cause: 16}``.  Teardown order: current
playback ``PlaybackFinished`` (state ``done``; queued ones are dropped),
recording ``RecordingFinished``, ``ChannelLeftBridge`` (the bridge stays until
deleted), ``StasisEnd``, ``ChannelDestroyed {cause, cause_txt}``.

Playbacks: per channel/bridge one at a time, queued in order.  The answer is
the playback in state ``queued``; ``PlaybackStarted`` (``playing``), for a
media list ``PlaybackContinuing`` between items (and ``PlaybackStarted`` for
each next item, as res_stasis_playback does), ``PlaybackFinished``
(``done``) after the media's length; ``DELETE /playbacks/{id}`` also ends in
``PlaybackFinished``; finished playbacks are 404.  Lengths: ``app_durations``,
else ``number:``/``digits:``/``characters:`` 0.6 s a character, ``tone:`` 1 s,
``recording:`` the stored length, 3 s otherwise.  Playing media stops a
channel's music on hold.  MOH has no ARI event (there is none in
events.json); it plays until stopped.

Recordings: answer ``queued``, ``RecordingStarted`` (after a 0.5 s beep if
asked), ``RecordingFinished`` (``done``, ``duration`` in whole seconds) at
``maxDurationSeconds``, on ``terminateOn`` key, ``/stop``, or hang up; then a
stored recording exists.  ``ifExists`` fail/overwrite/append; cancel gives
state ``canceled`` and keeps nothing.

Bridges: ``POST /bridges`` takes no app, so no ``BridgeCreated`` reaches an
app unless it uses ``subscribeAll``.  An app hears a bridge while one of its
channels is in it (or after subscribing): ``ChannelEnteredBridge``,
``ChannelLeftBridge``; ``DELETE /bridges/{id}`` removes the channels
(``ChannelLeftBridge`` each) and then sends ``BridgeDestroyed`` to those who
heard the bridge -- an empty bridge's destruction reaches nobody.

``POST /channels/{id}/continue``: leaves the bridge, ``StasisEnd``; the
channel lives on in the dialplan (``continued_to``), the app hears no more.

Applications: ``/ari/events?app=a[,b]&subscribeAll=true``.  A second
connection for an app sends ``ApplicationReplaced`` to the first, which is
then closed.  An app stays registered (filter, subscriptions) while its
websocket is away; events for it are dropped, calls stay in Stasis.
``PUT eventFilter`` follows the spec's rules (disallowed wins; empty allowed
allows all) and applies to every later event.  A restart forgets all apps
and channel names count from ``-00000001`` again (ids never repeat).

Auth: HTTP Basic or ``?api_key=user:pass``; otherwise 401.  Unknown routes
404 ``{"message": "Resource not found"}``, wrong method 405.  ``409 Channel
not in Stasis application`` for control operations on a channel outside
Stasis, ``404 Channel not found`` once it is gone.
"""

from asterisk_sim.errors import AriError, UnknownChannel
from asterisk_sim.model import RequestRecord
from asterisk_sim.script import CallerScript, EndpointScript, Press
from asterisk_sim.simulator import AsteriskSimulator
from asterisk_sim.spec import AriSpec, SpecError, load_spec

__all__ = [
    "AriError",
    "AriSpec",
    "AsteriskSimulator",
    "CallerScript",
    "EndpointScript",
    "Press",
    "RequestRecord",
    "SpecError",
    "UnknownChannel",
    "load_spec",
]
