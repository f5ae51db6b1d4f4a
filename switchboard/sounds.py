"""`switchboard sounds install`: the project's prompts, in Asterisk's file formats.

The prompts ship once, as 8 kHz 16-bit mono WAV (``sounds/<lang>/switchboard/``).
A channel whose codec is G.711 or G.722 would make Asterisk transcode every
playback of a WAV; with a file already in the channel's format it transcodes
nothing (Asterisk picks, among the files of one name, the format cheapest to
translate to the channel's).  So this writes each prompt in the formats asked
for, in Asterisk's layout ``DIR/<lang>/switchboard/<name>.<ext>``, with the file
extensions Asterisk's format modules register:

======  ==========================================  ===========================
ext     content                                      Asterisk module
======  ==========================================  ===========================
wav     RIFF WAVE, 8 kHz 16-bit mono (the shipped)   formats/format_wav.c
ulaw    raw G.711 mu-law, 8 kHz, 1 byte a sample     formats/format_pcm.c (pcm)
alaw    raw G.711 A-law, 8 kHz, 1 byte a sample      formats/format_pcm.c (alaw)
g722    raw G.722 at 64 kbit/s: 8000 bytes a second  formats/format_pcm.c (g722)
sln16   raw signed 16-bit little-endian, 16 kHz      formats/format_sln.c
======  ==========================================  ===========================

Everything is converted here, in Python, with integer arithmetic: nothing needs
sox or any other tool on the machine, and the same WAV always gives the same
bytes.  The speech stays narrowband (it was made at 8 kHz): ``sln16`` and
``g722`` carry it to wideband calls without transcoding, they add no treble.
"""

from __future__ import annotations

import array
import io
import os
import sys
import tempfile
import wave
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

from switchboard import g722
from switchboard.resources import data_path

# Asterisk's file extensions (formats/*.c), in the order they are written and reported.
FORMATS: Final = ("wav", "ulaw", "alaw", "g722", "sln16")
DEFAULT_FORMATS: Final = ("wav", "ulaw", "alaw")
SOURCE_RATE: Final = 8000
WIDEBAND_RATE: Final = 16000
PROMPT_FOLDER: Final = "switchboard"  # `sound:switchboard/<name>`
FILE_MODE: Final = 0o644  # Asterisk runs as its own user: readable by all


def sounds_dir() -> Path:
    """Where the shipped prompts are: the installed package's data, else the checkout's
    ``sounds/`` (`switchboard.resources`)."""
    return data_path("sounds")


class SoundsError(Exception):
    """What `sounds install` refuses to do, in one line for the user."""


@dataclass(frozen=True)
class Prompt:
    language: str
    name: str
    source: Traversable  # the shipped WAV


def shipped_prompts(root: Traversable) -> list[Prompt]:
    """Every ``<lang>/switchboard/<name>.wav`` under ``root``, sorted by language and name."""
    prompts = []
    if root.is_dir():
        for lang_dir in root.iterdir():
            folder = lang_dir / PROMPT_FOLDER
            if not lang_dir.is_dir() or not folder.is_dir():
                continue
            for entry in folder.iterdir():
                stem, dot, ext = entry.name.rpartition(".")
                if dot and ext == "wav" and stem and entry.is_file():
                    prompts.append(Prompt(lang_dir.name, stem, entry))
    return sorted(prompts, key=lambda p: (p.language, p.name))


# --- the shipped WAV ------------------------------------------------------------------


def read_wav(data: bytes, what: str) -> array.array[int]:
    """The samples of an 8 kHz 16-bit mono PCM WAV, the only input this converts."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            shape = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
            if shape != (1, 2, SOURCE_RATE) or wav.getcomptype() != "NONE":
                raise SoundsError(
                    f"{what}: {shape[0]} channel(s), {8 * shape[1]}-bit, {shape[2]} Hz; "
                    "expected mono 16-bit PCM at 8000 Hz"
                )
            samples = array.array("h", wav.readframes(wav.getnframes()))
    except (wave.Error, EOFError) as exc:
        raise SoundsError(f"{what}: not a readable WAV file ({exc})") from exc
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def little_endian(samples: Iterable[int]) -> bytes:
    out = array.array("h", samples)
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


# --- G.711 -----------------------------------------------------------------------------
#
# Asterisk's own encoders, ported from main/ulaw.c and main/alaw.c (the default build,
# without G711_NEW_ALGORITHM): Asterisk transcodes with tables built as
#     for (i = -32768; i < 32768; i++) __ast_lin2mu[((unsigned short)i) >> 2] = linear2ulaw(i);
# so the code of a sample is linear2ulaw() of the last value of its group of 4 (A-law:
# of 8, >> 3).  The files hold what Asterisk would have sent on the call itself.

# exp_lut[256] of linear2ulaw(): the position of the highest bit of (magnitude >> 7)
_ULAW_EXPONENT_LUT: Final = bytes([0] * 2 + [1] * 2 + [2] * 4 + [3] * 8 + [4] * 16 + [5] * 32
                                  + [6] * 64 + [7] * 128)  # fmt: skip
_ALAW_SEGMENT_ENDS: Final = (0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF)


def linear2ulaw(sample: int) -> int:
    """``linear2ulaw()`` of main/ulaw.c: sign and magnitude, bias 0x84, clip at 32635."""
    sign = (sample >> 8) & 0x80
    if sign:
        sample = -sample
    sample = min(sample, 32635) + 0x84
    exponent = _ULAW_EXPONENT_LUT[(sample >> 7) & 0xFF]
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def linear2alaw(linear: int) -> int:
    """``linear2alaw()`` of main/alaw.c: segments up to 0x7FFF, even bits inverted."""
    if linear >= 0:
        mask = 0x55 | 0x80  # AMI_MASK, sign bit 1
        pcm = linear
    else:
        mask = 0x55
        pcm = -linear
    seg = 0
    while seg < 8 and pcm > _ALAW_SEGMENT_ENDS[seg]:
        seg += 1
    return (((seg << 4) | ((pcm >> (seg + 3 if seg else 4)) & 0x0F)) ^ mask) & 0xFF


def linear_to_ulaw(sample: int) -> int:
    """A 16-bit sample's mu-law byte, as Asterisk's ``AST_LIN2MU()`` gives it (never
    -32768 into ``linear2ulaw``, whose negation C's ``short`` would wrap)."""
    return linear2ulaw(sample | 3)


def linear_to_alaw(sample: int) -> int:
    """A 16-bit sample's A-law byte, as Asterisk's ``AST_LIN2A()`` gives it."""
    return linear2alaw(sample | 7)


@cache
def _g711_table(law: str) -> bytes:
    """The code of every 16-bit sample, indexed by the sample as unsigned (0..65535)."""
    encode = linear_to_ulaw if law == "ulaw" else linear_to_alaw
    return bytes(encode(value - 65536 if value >= 32768 else value) for value in range(65536))


def g711(samples: array.array[int], law: str) -> bytes:
    """``samples`` (native signed 16-bit) in G.711 ``law``: ``ulaw`` or ``alaw``."""
    table = _g711_table(law)
    unsigned = array.array("H", samples.tobytes())
    return bytes(map(table.__getitem__, unsigned))


# --- 8 kHz -> 16 kHz ------------------------------------------------------------------

# The interpolation filter: a half-band low-pass, cut-off 4 kHz at 16 kHz, 127 taps: a
# windowed sinc, sinc(m/2) * Kaiser(beta=10, 127 points) for m = -63..63, in Q20.  Being
# half-band, its even taps are 0 but the centre (1.0): every input sample passes as is,
# and each new sample between two is  sum(C[k] * (x[n-k] + x[n+1+k]))  over these 32
# taps (m = 1, 3, ... 63).  Values rounded, C[0] then raised by 2 so that DC passes with
# gain exactly 1 (2 * sum(C) == 2**20).  Response: flat within 0.0001 dB to 3.6 kHz,
# -0.5 dB at 3.8 kHz, -6 dB at 4 kHz, below -90 dB from 4.4 kHz (the images).  Integer
# coefficients and arithmetic: the same bytes on every machine.
HALF_BAND_Q20: Final = (
    666749, -220133, 129573, -89924, 67297, -52460, 41872, -33885,
    27629, -22603, 18494, -15100, 12277, -9925, 7966, -6338,
    4993, -3889, 2991, -2267, 1690, -1237, 887, -621,
    422, -278, 175, -105, 59, -30, 13, -4,
)  # fmt: skip
_Q: Final = 20


def upsample_2x(samples: Sequence[int]) -> list[int]:
    """8 kHz -> 16 kHz: twice as many samples, the even ones the input's own, the odd ones
    interpolated by ``HALF_BAND_Q20`` (the signal taken as silent outside the recording)."""
    n = len(samples)
    taps = len(HALF_BAND_Q20)
    padded = [0] * taps + list(samples) + [0] * taps
    rounding = 1 << (_Q - 1)
    acc = [rounding] * n
    for k, coeff in enumerate(HALF_BAND_Q20):
        # between x[i] and x[i+1]: x[i-k] and x[i+1+k]
        before = padded[taps - k : taps - k + n]
        after = padded[taps + 1 + k : taps + 1 + k + n]
        acc = [a + coeff * (b + c) for a, b, c in zip(acc, before, after, strict=True)]
    out = [0] * (2 * n)
    out[0::2] = samples
    out[1::2] = [max(-32768, min(32767, a >> _Q)) for a in acc]
    return out


# --- one prompt, every format ---------------------------------------------------------


def convert(wav_data: bytes, formats: Sequence[str], what: str) -> dict[str, bytes]:
    """The shipped WAV ``wav_data`` in each of ``formats`` (Asterisk's extensions)."""
    samples = read_wav(wav_data, what)
    wide: list[int] | None = None
    out: dict[str, bytes] = {}
    for fmt in formats:
        if fmt == "wav":
            out[fmt] = wav_data  # already Asterisk's native wav: copied byte for byte
        elif fmt in {"ulaw", "alaw"}:
            out[fmt] = g711(samples, fmt)
        elif fmt in {"g722", "sln16"}:
            if wide is None:
                wide = upsample_2x(samples)
            out[fmt] = g722.encode(wide) if fmt == "g722" else little_endian(wide)
        else:
            raise SoundsError(f"unknown format {fmt!r}")
    return out


# --- installing -----------------------------------------------------------------------


@dataclass
class InstallReport:
    """What `install` did, by format: new files, files replaced (--force), files that were
    already the same."""

    target: Path
    languages: tuple[str, ...]
    formats: tuple[str, ...]
    written: Counter[str] = field(default_factory=Counter)
    replaced: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        """``N file(s) written to DIR (en, ru)``, then one line per format."""
        total = sum(self.written.values()) + sum(self.replaced.values())
        rows = [f"{total} file(s) written to {self.target} ({', '.join(self.languages)})"]
        for fmt in self.formats:
            parts = [f"{self.written[fmt]} written"]
            if self.replaced[fmt]:
                parts.append(f"{self.replaced[fmt]} replaced")
            parts.append(f"{self.unchanged[fmt]} unchanged")
            rows.append(f"  {fmt:<6} {', '.join(parts)}")
        return rows


def parse_choice(text: str, known: Sequence[str], what: str) -> tuple[str, ...]:
    """A comma-separated list of ``known`` names, in the order given, once each."""
    chosen: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item not in known:
            raise SoundsError(f"unknown {what} {item!r} (known: {', '.join(known)})")
        if item not in chosen:
            chosen.append(item)
    if not chosen:
        raise SoundsError(f"no {what} given (known: {', '.join(known)})")
    return tuple(chosen)


def install(
    target: Path,
    formats: Sequence[str] = DEFAULT_FORMATS,
    languages: Sequence[str] | None = None,
    *,
    force: bool = False,
    source: Traversable | None = None,
) -> InstallReport:
    """Write the prompts of ``languages`` (default: every shipped one) in ``formats`` under
    ``target`` as ``<lang>/switchboard/<name>.<ext>``.

    Everything is converted first; a file already there with other content is an
    error unless ``force`` (then nothing at all is written).  Each file is written to
    a temporary name beside it and renamed, mode 644."""
    root = sounds_dir() if source is None else source
    prompts = shipped_prompts(root)
    shipped = sorted({p.language for p in prompts})
    if not prompts:
        raise SoundsError(f"no prompts found in {root}: is the package installed completely?")
    chosen = tuple(shipped) if languages is None else tuple(languages)
    for lang in chosen:
        if lang not in shipped:
            raise SoundsError(f"no prompts in language {lang!r} (shipped: {', '.join(shipped)})")
    for fmt in formats:
        if fmt not in FORMATS:
            raise SoundsError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")

    planned: list[tuple[str, Path, bytes]] = []
    for prompt in prompts:
        if prompt.language not in chosen:
            continue
        what = f"{prompt.language}/{PROMPT_FOLDER}/{prompt.name}.wav"
        converted = convert(prompt.source.read_bytes(), formats, what)
        folder = target / prompt.language / PROMPT_FOLDER
        for fmt in formats:
            planned.append((fmt, folder / f"{prompt.name}.{fmt}", converted[fmt]))

    report = InstallReport(target, chosen, tuple(formats))
    differing: list[Path] = []
    actions: list[tuple[str, Path, bytes, Counter[str]]] = []
    for fmt, path, data in planned:
        if path.is_dir():
            raise SoundsError(f"{path} is a folder")
        if not path.exists():
            actions.append((fmt, path, data, report.written))
        elif path.read_bytes() == data:
            report.unchanged[fmt] += 1
        else:
            differing.append(path)
            actions.append((fmt, path, data, report.replaced))
    if differing and not force:
        shown = "\n".join(f"  {path}" for path in differing[:10])
        more = f"\n  ... and {len(differing) - 10} more" if len(differing) > 10 else ""
        raise SoundsError(
            f"{len(differing)} file(s) already there differ from the prompts; nothing "
            f"written (--force replaces them):\n{shown}{more}"
        )
    for fmt, path, data, counter in actions:
        _write(path, data)
        counter[fmt] += 1
    return report


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
