"""The project's own prompts, and how a prompt reference in the config is read.

A prompt reference is one of:

- a built-in prompt name below (the project's ``sounds/``) or a name declared
  under ``prompts:`` in the configuration;
- ``sound:NAME`` — any Asterisk sound file, played as is and not checked;
- ``number:N`` / ``digits:N`` — said by Asterisk's core sounds (N may be a template).

``greeting`` is virtual: it becomes ``greeting-morning``, ``greeting-day`` or
``greeting-evening`` by the local time (boundaries under ``greeting:``).
"""

from __future__ import annotations

from typing import Final

# name -> (duration in seconds used by `simulate`, English text of the recording)
BUILTIN_PROMPTS: Final[dict[str, tuple[float, str]]] = {
    "greeting-morning": (2.0, "Good morning!"),
    "greeting-day": (2.0, "Good afternoon!"),
    "greeting-evening": (2.0, "Good evening!"),
    "welcome": (3.0, "Thank you for calling."),
    "main-menu": (6.0, "For sales press 1, for support press 2."),
    "sales-menu": (6.0, "For sales press 1, for support press 2, or dial an extension."),
    "support-menu": (5.0, "For technical support press 1, for billing press 2."),
    "invalid-option": (2.0, "Sorry, that is not a valid choice."),
    "please-hold": (3.0, "All our operators are busy. Please hold."),
    "position-is": (2.0, "Your position in the queue is"),
    "estimated-wait": (2.75, "The estimated waiting time is about"),
    # "minutes" after a number, in the language's plural form (`minutes_prompt`)
    "minutes-1": (0.65, "minute"),
    "minutes-2": (0.76, "minutes"),
    "minutes-5": (0.76, "minutes"),
    "callback-offer": (3.0, "Press 1 and we will call you back."),
    "callback-enter-number": (
        4.0,
        "Enter the number to call you back on, then press hash. "
        "Or just press hash for this number.",
    ),
    "callback-enter-time": (
        5.91,
        "Enter a time to call you back, like one five zero zero. Or press hash.",
    ),
    "callback-confirm": (3.0, "Thank you. We will call you back."),
    "callback-at": (1.44, "We will call you at"),
    "callback-failed": (3.0, "Sorry, we could not take your request."),
    "voicemail-intro": (4.0, "Please leave a message after the tone."),
    "beep": (1.0, "(tone)"),
    "press-1-to-accept": (3.0, "Incoming call from Switchboard. Press 1 to take the call."),
    "closed": (4.0, "Our office is closed now. Please call again during working hours."),
    "lunch": (3.0, "We are at lunch. Please call back in an hour."),
    "holiday": (3.0, "Our office is closed for the holiday."),
    "goodbye": (1.5, "Goodbye."),
    # what an agent hears after a feature code (*71, *72, *73: `switchboard.acd.phone`)
    "agent-logged-in": (1.25, "You are logged in."),
    "agent-logged-out": (1.25, "You are logged out."),
    "agent-paused": (3.3, "You are paused. No calls will come to you."),
    "agent-resumed": (3.25, "You are back. Calls will come to you again."),
    "agent-unknown": (3.2, "Sorry, this phone belongs to no employee."),
}

VIRTUAL_PROMPTS: Final[frozenset[str]] = frozenset({"greeting"})
GENERATED_PREFIXES: Final[tuple[str, ...]] = ("number:", "digits:")
SOUND_PREFIX: Final[str] = "sound:"
SPOKEN_DIGIT_SECONDS: Final[float] = 0.6


def is_known_prompt(name: str, declared: set[str] | frozenset[str]) -> bool:
    """Whether a prompt reference resolves to something Asterisk can play."""
    if name.startswith(GENERATED_PREFIXES) or name.startswith(SOUND_PREFIX):
        return True
    return name in BUILTIN_PROMPTS or name in VIRTUAL_PROMPTS or name in declared


def minutes_prompt(count: int, language: str) -> str:
    """The prompt that says "minutes" after ``count`` in ``language``: ``minutes-1``,
    ``minutes-2`` (Russian "2-4": минуты) or ``minutes-5`` -- the plural forms of
    CLDR's rules for ru (one, few, many) and en (one, other)."""
    if language.replace("-", "_").partition("_")[0].lower() == "ru":
        if count % 10 == 1 and count % 100 != 11:
            return "minutes-1"
        if 2 <= count % 10 <= 4 and not 12 <= count % 100 <= 14:
            return "minutes-2"
        return "minutes-5"
    return "minutes-1" if count == 1 else "minutes-5"
