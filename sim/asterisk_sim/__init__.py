"""A test double of Asterisk 22 that speaks real ARI (HTTP + websocket).

Tests and ``switchboard demo`` run it in-process (`AsteriskSimulator`); the
ARI client talks to it over real sockets exactly as to Asterisk.  Every
scripted delay (answer after N s, prompt lengths, a caller's key presses, hang
ups) is in seconds of the `switchboard.clock.Clock` it is given.

Modules: `simulator` (the Python API), `server` (ARI routes, auth, request
log, the ``/_sim`` control API), `pbx` (state changes and who hears which
event), `model` (resources and their ARI snapshots), `events` (event
builders), `applications` (Stasis apps, websockets, event filters), `devices`
(device states and their aggregation), `script` (endpoint and caller
behaviour), `spec` (the ARI spec as data, validation).

What is modelled, and from where
================================

Sources: the Asterisk source (``res/ari/resource_channels.c``,
``res/stasis/control.c``, ``main/bridge_channel.c``, ``main/channel.c``,
``res/res_stasis_playback.c``, ``main/devicestate.c``,
``channels/chan_pjsip.c``, ``res/res_stasis_device_state.c``,
``res/ari/resource_device_states.c``, ``res/ari/resource_applications.c``,
``res/res_stasis.c``, ``apps/app_dial.c``; for blind transfer ``main/bridge.c``,
``main/stasis_bridges.c``, ``res/stasis/stasis_bridge.c``, ``res/stasis/app.c``,
``main/core_unreal.c``, ``res/res_pjsip_refer.c``), the 22.10.1 ``rest-api`` JSON (a copy in
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
``/silence``, ``/progress`` send no event; ``/hold`` (and ``/ring``,
``/progress``) do change a PJSIP channel's device state (see Device states).

``POST /channels/create`` (resource_channels.c, ast_ari_channels_create):
the channel is created ``Down``; ``ari_channel_thread`` then runs
``Stasis()`` for it on a thread of its own.  The HTTP answer is the snapshot
taken before that thread starts (``app_name`` ""); ``StasisStart`` (state
``Down``, args = ``appArgs`` split on commas) follows on the websocket
`stasis_delay` clock seconds later (after the answer here; in Asterisk either
may come first, so pass ``channelId``).  Until then every control request
(``/dial`` included) is ``409 Channel not in Stasis application``.  An app
not connected by then: the channel is hung up.  No ``ChannelCreated`` (the
app subscribes after creation).  A PJSIP endpoint with no contact (script
``offline``) cannot be made: 500 ``{"error": "Allocation failed"}``.

``POST /channels/{id}/dial`` (control.c, app_control_dial; bridge_channel.c,
bridge_handle_trip): 409 ``Channel is not in the 'Down' state``, or
``Dialing a channel not created by ARI``.  ``Dial {peer, dialstring:
<resource>, dialstatus: ""}`` at once; then ``ChannelStateChange`` Ringing +
``Dial RINGING``; on answer ``ChannelStateChange`` Up + ``Dial ANSWER``.
Asterisk never puts ``caller`` in these Dial events (it passes NULL);
``?caller=`` only copies the caller's caller-id into the peer's ``connected``
and its language.  How a dial fails depends on the channel:

- PJSIP, busy or congestion: the SIP session ends and chan_pjsip queues a
  hangup (chan_pjsip.c, chan_pjsip_session_end) -- no final Dial status,
  ``ChannelHangupRequest {cause 17 | 34}``, ``StasisEnd``,
  ``ChannelDestroyed``: Asterisk removes the channel itself;
- Local (its ``;2`` half runs ``Busy()``/``Congestion()``): only the control
  frame crosses -- ``Dial BUSY | CONGESTION`` and the channel stays in Stasis,
  ``Down``, until the app hangs it up;
- Local to no extension (script ``offline``): ``ast_call`` fails, no Dial
  event, ``StasisEnd``, ``ChannelDestroyed {16}``;
- the ``timeout`` passes unanswered (control.c, bridge_timeout ->
  hangup_channel): ``ChannelHangupRequest {cause 32, soft}``, ``StasisEnd``,
  ``ChannelDestroyed {19}`` -- never a Dial NOANSWER.  Without a timeout a
  ringing channel rings until hung up.

A created channel nobody dials or hangs up stays in Asterisk for good.
(Asterisk accepts a second ``/dial`` while the channel is still Down and
calls it again; what happens then is the channel driver's: the simulator
refuses it with 409.)

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

Blind transfer (`AsteriskSimulator.blind_transfer`, a SIP phone's REFER:
``res/res_pjsip_refer.c`` -> ``main/bridge.c``, ``ast_bridge_transfer_blind``,
``is_external`` true; answers the REFER's code: 200, 400 Invalid, 404 no such
extension -- ``Local/exten@ctx`` scripted ``offline`` -- with no event at
all).  ARI bridges are AST_BRIDGE_FLAG_TRANSFER_BRIDGE_ONLY
(``res/res_stasis.c``, bridge_create_common), so ``blind_transfer_bridge``
swaps a Local channel ``exten@ctx`` into the bridge in the transferer's place;
``res/stasis/stasis_bridge.c`` first puts its ``;1`` into the transferer's
application.  The app hears, in this order (Asterisk's, not a race: the
publication waits on the impart, which is signalled only after the swap):
``ChannelUnhold`` (transferer), ``ChannelVarset BLINDTRANSFER`` on each
bridged channel, ``StasisStart`` of ``;1`` (``args: []``, ``replace_channel``:
the transferer), ``ChannelLeftBridge`` (transferer), ``ChannelEnteredBridge``
(``;1``), ``ChannelVarset BLINDTRANSFER ""`` (``;1``), ``BridgeBlindTransfer``
(``channel``, ``transferee`` in a two-party mixing bridge, ``replace_channel``,
``bridge`` as before, ``exten``, ``context``, ``result`` "Success",
``is_external``).  ``;2`` then behaves as the script of ``Local/exten@ctx``:
``;1`` Ringing + ``Dial RINGING``, Up + ``Dial ANSWER`` (bridge_channel.c,
bridge_handle_trip); its hang up ends ``;1``.  The transferer stays up, in the
app, out of the bridge; the StasisStart's ``replace_channel`` dropped one of
the app's subscriptions to it (res_stasis.c, send_start_msg_snapshots), so of
an inbound transferer only its ``StasisEnd`` is heard any more, while a
created or originated one is still heard.  No bridge, or alone in one:
``BridgeBlindTransfer`` "Invalid" (400) and nothing else changes.

``POST /channels/{id}/continue``: leaves the bridge, ``StasisEnd``; the
channel lives on in the dialplan (``continued_to``), the app hears no more.

REST over the events websocket (res/ari/ari_websocket_requests.c,
ari_websocket_process_request; Asterisk 20.14, 21.9, 22.4 and later): a
``RESTRequest`` message ``{type, transaction_id, request_id, method, uri
[?query], query_strings, content_type, message_body}`` is run as the HTTP
request it stands for (through the same routes, recorded with ``via:
websocket``), one at a time in the order received, and answered with a
``RESTResponse`` event ``{transaction_id, request_id, status_code,
reason_phrase, uri, content_type, message_body}`` that the app's event
filter applies to; another ``type`` is 400 "Unknown request type.", a bad
method 400.  ``AsteriskSimulator(rest_over_websocket=False)`` is an older
Asterisk, which reads nothing the client sends there.

Applications: ``/ari/events?app=a[,b]&subscribeAll=true``.  A second
connection for an app sends ``ApplicationReplaced`` to the first, which is
then closed.  An app stays registered (filter, subscriptions) while its
websocket is away; events for it are dropped, calls stay in Stasis.
``PUT eventFilter`` follows the spec's rules (disallowed wins; empty allowed
allows all) and applies to every later event.  A restart forgets all apps
and channel names count from ``-00000001`` again (ids never repeat); the
``Stasis:`` device states stay (astdb; res_stasis_device_state.c,
populate_cache), and so do the endpoints' scripts and registrations.

Device states (``devices``, `Pbx.compute_device_state`):

1. ``PJSIP/<endpoint>`` is computed as chan_pjsip.c's
   ``chan_pjsip_devicestate``: INVALID for an endpoint the simulator does not
   have (not the trunk, not scripted or (un)registered, no channel ever made
   on it); with no channel on it NOT_INUSE, or UNAVAILABLE when it has no
   contact (scripted ``offline``, or ``unregister_endpoint`` / ``POST
   /_sim/endpoints/{tech}/{resource}/unregister``); with channels, their
   aggregate -- even while unregistered -- each channel counting as
   ``ast_state_chan2dev`` of its state (Down NOT_INUSE, Ring and Up INUSE,
   Ringing RINGING) or ONHOLD while held (``POST /channels/{id}/hold``:
   control.c, app_control_hold -> chan_pjsip_indicate, chan_pjsip_add_hold).
   The aggregate (main/devicestate.c, ``ast_devstate_aggregate_add``):
   ringing together with in use/on hold/busy is RINGINUSE, otherwise the
   highest of RINGINUSE > BUSY > INUSE > RINGING > ONHOLD > NOT_INUSE >
   UNAVAILABLE.  The channels of a device are those named ``<device>-...``
   (main/channel.c, ast_setstate), so ``PJSIP/x@trunk`` counts in
   ``PJSIP/trunk``.  ``device_state_busy_at`` is 0 (never BUSY).
   ``Local/exten@ctx`` follows main/core_local.c's ``local_devicestate``;
   ``DAHDI/n`` and any state a driver calls UNKNOWN,
   ``ast_parse_device_state``; another technology, or a name with neither
   ``/`` nor ``:``, INVALID; ``Stasis:x`` the value PUT; ``Custom:x``
   UNKNOWN.
2. When it is re-evaluated: a channel's state changes (ast_setstate) or the
   channel goes (its destructor); chan_pjsip_indicate on a PJSIP channel
   (HOLD, UNHOLD, RINGING -- ``/ring``, a ``Dial()``'s ringback to its
   caller -- PROGRESS); the endpoint goes online/offline
   (res_pjsip/pjsip_configuration.c, ast_sip_persistent_endpoint_update_state).
   A new channel does not re-evaluate it (a created, Down one would not change
   it; an inbound Ring one is seen at its first indication or answer).  DAHDI
   channels do not cache (chan_dahdi.c, AST_FLAG_DISABLE_DEVSTATE_CACHE):
   never published.
3. Publication (main/devicestate.c, ``ast_publish_device_state_full``): only a
   state different from the cached one is published; the cache starts with
   every endpoint's state as chan_pjsip's load computes it (an endpoint the
   simulator meets later counts as configured that way from the start).
   ``GET /deviceStates/{name}`` (resource_device_states.c,
   ``ast_device_state``) answers the cached state, else computes one: always
   200, ``INVALID`` for what does not exist.  The name is one path segment
   (res_ari.c, ast_ari_invoke splits, then decodes): ``PJSIP%2F201``; an
   unencoded ``/deviceStates/PJSIP/201`` is 404 ``Resource not found``.
   ``GET /deviceStates`` lists only the ``Stasis:`` devices set over ARI.
   ``PUT``/``DELETE`` only ``Stasis:`` devices (res_stasis_device_state.c):
   409 ``Uncontrolled device specified``, 404 ``Device name is missing``, an
   unknown value 500 ``Unknown device``; PUT publishes the state, DELETE
   clears the cache and publishes nothing.
4. ``POST /applications/{app}/subscription?eventSource=deviceState:<name>``
   (resource_applications.c -> res_stasis.c app_subscribe ->
   res_stasis_device_state.c): always succeeds -- ``find_device_state`` makes
   a subscription for any name, so a device that does not exist is 200 and
   listed in ``device_names``; ``deviceState:`` alone, or connecting a new app
   with ``subscribeAll=true`` (res_stasis.c, __stasis_app_register), is every
   device (``__AST_DEVICE_STATE_ALL_TOPIC``).  Each subscription hearing a
   published state sends ``DeviceStateChanged {device_state: {name, state}}``
   (device_state_cb -> send_device_state; the topic matches names in any
   case, so ``PJSIP/201`` and ``pjsip/201`` are two subscriptions and two
   events); nothing is sent on subscribing.  ``DELETE`` of a source not
   subscribed is 422 ``Event source was not subscribed to``
   (app_unsubscribe), for every scheme; subscription errors say ``Event source
   does not exist`` (422), ``Application not found`` (404), ``Missing
   parameter eventSource`` (400).  Endpoint subscriptions get no
   ``EndpointStateChange`` (not modelled).
5. A phone's own call (`AsteriskSimulator.call_from`, ``POST
   /_sim/endpoints/{tech}/{resource}/call``): a ``PJSIP/201-...`` channel in
   ``Ring`` (chan_pjsip_incoming_request) that never enters Stasis; without
   ``to`` the dialplan answers it at once, with ``to`` it runs ``Dial(to)``
   (app_dial.c): the callee rings and answers by its `EndpointScript`, its
   Dial events name the caller, its ringing is indicated to the caller, the
   caller is answered when it answers (main/features.c, pre_bridge_setup);
   either hanging up ends both; an offline callee ends the call with cause 3
   (chan_pjsip_request, AST_CAUSE_NO_ROUTE_DESTINATION), a refusing one with
   its cause.  Subscribers to the devices see INUSE/RINGING and back.

Auth: HTTP Basic or ``?api_key=user:pass``; otherwise 401 ``Authentication
required`` with a Basic challenge, the events websocket's upgrade included
(res/res_ari.c, ``ast_ari_invoke``); an empty user or password is always
refused (res/ari/config.c, ``ari_conf_validate_user``); a ``read_only`` user
gets 403 ``Write access denied`` for anything but GET (``ast_ari_invoke``).
`AsteriskSimulator.reload_ari_user` is ari.conf changed then ``module reload
res_ari.so`` (res_ari.c, ``reload_module``).  Unknown routes
404 ``{"message": "Resource not found"}``, wrong method 405.  ``409 Channel
not in Stasis application`` for control operations on a channel outside
Stasis, ``404 Channel not found`` once it is gone; ``412 Channel in invalid
state`` for answer, play, moh, dtmf, hold, mute, ring, progress, silence and
continue on a channel that is Down, Reserved or Ringing
(resource_channels.c, channel_state_invalid).

Audit: every ARI request Switchboard makes, against Asterisk 22.10.1
=====================================================================

For each request the runtimes (``ari_app/runtime.py``, ``ari_app/callbacks.py``,
``ari_app/supervisor.py``) send: what Asterisk does (file, function), what
Switchboard does about it, what the simulator does, and the tests that hold
both to it (``tests/test_asterisk_sim.py`` = S, ``tests/test_ari_legs.py`` =
L, ``tests/test_ari_calls.py`` = C, the real-Asterisk suite
``tests/real_asterisk`` = R).

1. ``POST /channels/create`` -- Asterisk: ``ast_ari_channels_create``
   answers a snapshot from before ``ari_channel_thread`` runs ``Stasis()``
   (res_stasis.c, ``stasis_app_exec`` links the control, then publishes
   StasisStart); answer and StasisStart are not ordered.  Switchboard: the
   leg's channel id is registered before the request (its events may come
   first); the leg is dialled only when both the answer and its StasisStart
   are in (``CallSession._entered``, the call-back worker waits the same
   way); a leg whose StasisStart has not come in `ari_app.legs.STASIS_WAIT`
   seconds is hung up and reported failed; a create that timed out is hung
   up anyway (Asterisk may have made it).  Simulator: `Pbx.create_channel`
   enters Stasis `stasis_delay` later.  Tests: S
   ``test_a_created_channel_enters_stasis_after_the_answer_and_a_dial_before_it_is_409``;
   L ``test_a_leg_that_enters_the_app_late_is_dialled_once_it_is_in``,
   ``test_a_leg_that_never_enters_the_app_is_given_up_and_the_scenario_goes_on``.
2. ``POST /channels/{id}/dial`` before StasisStart -- Asterisk:
   ``find_control`` (resource_channels.c) finds no control: 409 ``Channel
   not in Stasis application``; nothing waits or retries.  Switchboard: never
   sends it (1).  Simulator: ``_control`` in ``server.py``.  Tests: as in 1.
3. How a dialled leg ends -- Asterisk: ``app_control_dial`` (control.c)
   publishes ``Dial ""``; ``bridge_handle_trip`` (bridge_channel.c) publishes
   RINGING/ANSWER/BUSY/CONGESTION control frames, a BUSY without a hangup
   leaves the channel in Stasis; a PJSIP failure ends the session
   (chan_pjsip.c, ``chan_pjsip_session_end``) and the channel is destroyed
   with the SIP code's cause and no final Dial status; the ``timeout`` hangs
   it up with cause 19 (``bridge_timeout``, ``hangup_channel``).  Switchboard:
   a leg's end is read from its ``ChannelDestroyed`` cause as much as from
   ``Dial`` (`ari_app.legs.leg_end`); a leg whose dial reported BUSY,
   CONGESTION or another failure is hung up at once (``CallSession._release``),
   not at the end of the call; every dial carries the ring timeout.
   Simulator: `Pbx.dial_failed`, `Pbx.dial_timed_out`, `Pbx.call_failed`.
   Tests: S ``test_a_pjsip_endpoint_that_refuses_the_call_is_hung_up_by_asterisk_with_its_cause``,
   ``test_a_local_channel_that_signals_busy_reports_it_and_stays_until_hung_up``,
   ``test_a_local_channel_to_nowhere_leaves_stasis_without_a_dial_event``,
   ``test_an_unanswered_dial_is_hung_up_by_asterisk_at_its_timeout``; L
   ``test_a_leg_whose_phone_signals_busy_is_hung_up_at_once_not_at_the_end_of_the_call``;
   R ``test_sales_all_busy_goes_to_reception``.
4. A leg that fails again and again (a queue member whose phone is busy or
   unregistered) -- Asterisk: a PJSIP endpoint with no contact cannot even
   be created (``ast_request`` fails: 500 ``Allocation failed``).
   Switchboard: the queue does not offer the call to a member rung for it in
   the last ``retry`` seconds (the department's, 5 by default; `QueueActivity`),
   a call starts at most `ari_app.legs.RING_BURST` legs at once and
   `ari_app.legs.RINGS_PER_SECOND` after that (`RingBudget`), and a storm of
   one failure is one log line and a count (`RepeatedWarnings`).  Simulator:
   ``_outgoing`` refuses an ``offline`` PJSIP endpoint.  Tests: S
   ``test_an_unregistered_pjsip_endpoint_cannot_even_be_created``; L
   ``test_a_queue_member_whose_phone_is_busy_is_rung_once_per_retry_not_in_a_loop``;
   ``tests/test_queue.py``, ``tests/test_ari_leg_limits.py``; R
   ``test_a_queue_whose_members_are_busy_overflows_at_max_wait_ringing_each_per_retry``.
5. ``DELETE /channels/{id}`` -- Asterisk: ``ast_ari_channels_hangup`` needs
   no Stasis; ``ast_softhangup`` publishes ``ChannelHangupRequest {cause 32,
   soft}``; a created channel hung up before its StasisStart still gets it,
   then StasisEnd (app_stasis.c checks no hangup first); a created channel
   nobody hangs up stays (no timer in ``stasis_app_exec``).  Switchboard:
   every channel it created ends with its DELETE unless Asterisk destroyed it
   first: stopped legs, legs given up, legs still being created when stopped
   (hung up once the create answers), every leg at the end of the call, and
   a leg StasisStart that no call owns any more (``AriRuntime._hang_up_stray``;
   after a reconnect, such legs found in the app are hung up, not sent to
   the fallback).  Simulator: `Pbx.app_hangup` keeps the pending entry.
   Tests: S ``test_a_created_channel_hung_up_before_its_stasis_start_still_gets_it_then_ends``,
   ``test_a_created_channel_never_dialled_stays_in_asterisk_until_hung_up``;
   L ``test_a_leg_stopped_before_it_entered_the_app_is_hung_up_and_nothing_is_left``;
   R every test ends with Asterisk's channel and bridge lists empty.
6. ``POST /channels/{id}/play`` (and ``/answer``, ``/moh``) on a channel not
   answered or not in the app -- Asterisk: ``find_control`` 409 outside the
   app; ``channel_state_invalid`` 412 for Down/Reserved/Ringing; an inbound
   channel in Ring plays as early media (res_stasis_playback.c,
   ``play_on_channel`` indicates PROGRESS); a play queued as the channel
   leaves Stasis is answered 201 and never runs.  Switchboard: prompts and
   hold music go to the caller only after the engine answered it
   (``CallRun.play`` and the queue call ``ensure_answered``); the confirm
   prompt goes to a leg only after its Dial ANSWER; a play that fails is
   reported to the engine as finished, so no call waits on it.  Simulator:
   ``_control_in_state``.  Tests: S
   ``test_media_and_answer_on_a_created_channel_not_yet_up_are_412``,
   ``test_answer_then_play_finishes_the_prompt_after_its_length``; R
   ``test_sales_rings_ivan_then_his_mobile_which_takes_the_call_after_pressing_1``.
7. ``POST /bridges/{id}/addChannel`` -- Asterisk:
   ``ast_ari_bridges_add_channel`` (resource_bridges.c): 400 ``Channel not
   found``, 422 ``Channel not in Stasis application`` (a created channel
   before its StasisStart); synchronous, yet 204 without effect when the
   channel hangs up meanwhile (``check_add_remove_channel``).  Switchboard:
   only a leg that answered -- so in the app -- is bridged; a 400/404 means a
   side hung up this instant, and its hang-up event ends the conversation.
   Simulator: ``_bridge_channels`` in ``server.py``.  Tests: S
   ``test_adding_a_channel_outside_stasis_or_unknown_to_a_bridge_is_refused``;
   R the connected calls.
8. ``DELETE /bridges/{id}`` while a hang-up is in flight -- Asterisk:
   ``stasis_app_bridge_destroy`` (res_stasis.c) -> ``ast_bridge_destroy``
   (main/bridge.c, ``bridge_dissolve``) answers 204 before the members have
   left; a member still up goes back to the app idle (not hung up, no
   StasisEnd, no timer): a caller left there is "stuck".  Switchboard: hangs
   up the caller and every leg first, waits (up to ``TEARDOWN_WAIT``) until
   the bridged ones are gone, then destroys the bridge; it never counts on a
   bridge's destruction to end a member.  Simulator: `Pbx.destroy_bridge`
   leaves members in the app.  Tests: S
   ``test_bridged_channels_leave_the_bridge_when_they_hang_up_and_the_bridge_stays``;
   R ``test_the_caller_hanging_up_at_any_stage_leaves_nothing_behind`` (talking).
9. ``POST /channels/{id}/continue``, then more requests -- Asterisk:
   ``app_control_continue`` (control.c) runs queued commands, marks the
   control done, StasisEnd; later requests are 409, or a 2xx for a command
   that is dropped.  Switchboard: the engine stops hold music before it
   continues; after the continue nothing more is asked of the channel (no
   hang-up at teardown either -- before, a call with no scenario was sent to
   the fallback and hung up at once).  Simulator: ``continue_in_dialplan``
   leaves Stasis at once.  Tests: S
   ``test_continue_sends_the_channel_back_to_the_dialplan``; C
   ``test_a_call_no_scenario_takes_goes_to_the_fallback_and_is_not_hung_up_there``.
10. ``POST /channels`` (originate) with ``appArgs`` -- Asterisk:
    ``ari_channels_handle_originate_with_id`` and ``ari_originate_dial``
    (resource_channels.c, main/dial.c): ``appArgs`` are split as ``Stasis()``'s
    arguments (``AST_STANDARD_APP_ARGS``); StasisStart only after the answer;
    a failure or timeout destroys the channel with no StasisStart; default
    timeout 30 s.  Switchboard: does not originate -- legs and call-backs use
    create + dial, so a leg is dialled with the caller's caller-id and legs
    can join a cascade (`AriClient.originate` stays for tools).  Simulator:
    `Pbx.originate`.  Tests: S
    ``test_an_originated_call_enters_stasis_only_once_answered``.
11. ``PUT /applications/{app}/eventFilter`` -- Asterisk:
    ``stasis_app_event_filter_set`` (res/stasis/app.c) matches ``type``
    only, StasisStart/StasisEnd included, and RESTResponse too.  Switchboard:
    allows exactly ``ari_app.models.USED_EVENTS`` (RESTResponse among them)
    after every (re)connection.  Simulator: ``applications.py``.  Tests: S
    ``test_the_event_filter_keeps_only_allowed_events_and_disallowed_wins``.
12. Requests as ``RESTRequest`` on the events websocket -- Asterisk:
    ``ari_websocket_process_request`` runs them one at a time on the
    websocket's thread (res/ari/ari_websockets.c), answers ``RESTResponse``
    through the event filter; an Asterisk before 20.14/21.9/22.4 ignores
    them.  Switchboard: asks once per connection (``GET asterisk/ping``,
    2 s) and sends its requests there only when answered
    (``asterisk.rest_over_websocket``, default true); a request waiting when
    the websocket goes is `AriUnavailable`, and HTTP serves until the next
    connection's answer.  Simulator: ``AriServer._rest_over_websocket``.
    Tests: ``tests/test_ari_rest_over_websocket.py``:
    ``test_a_rest_request_on_the_events_websocket_gets_its_rest_response``,
    ``test_requests_go_over_the_websocket_only_when_asterisk_and_the_config_agree``,
    ``test_when_asterisk_stops_answering_on_the_websocket_requests_fail_over_to_http``.
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
