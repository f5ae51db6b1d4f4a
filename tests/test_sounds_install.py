"""`switchboard sounds install` (issue 13): the prompts in Asterisk's own formats.

The real command writes every format and language into a temporary folder once;
then every file it wrote is checked the way Asterisk would see it: the WAVs'
headers with soxi, G.711 and the 16 kHz linear files decoded by sox, and G.722
(which sox cannot read) by a port of the reference decoder, tests/g722_reference.py.
Each decoded file is compared with the shipped prompt as a signal-to-noise ratio.
The sox checks are skipped where sox is not installed (apt-get install sox).
"""

from __future__ import annotations

import array
import hashlib
import math
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from switchboard import g722, sounds
from tests import g722_reference

ROOT = Path(__file__).resolve().parent.parent
SOUNDS = Path(str(sounds.sounds_dir()))  # the shipped prompts, wherever packaged
SHIPPED = sorted((p.parent.parent.name, p.stem) for p in SOUNDS.glob("*/switchboard/*.wav"))
LANGUAGES = sorted({lang for lang, _ in SHIPPED})
ALL_FORMATS = ("wav", "ulaw", "alaw", "g722", "sln16")

SOX = shutil.which("sox") or "sox"
SOXI = shutil.which("soxi") or "soxi"
needs_sox = pytest.mark.skipif(
    shutil.which("sox") is None or shutil.which("soxi") is None,
    reason="sox is not installed (apt-get install sox)",
)


def switchboard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Every format of every language, installed by the real command run from a folder
    that is not the repository (the prompts are found from the package)."""
    elsewhere = tmp_path_factory.mktemp("cwd")
    target = tmp_path_factory.mktemp("asterisk") / "sounds"
    done = switchboard(
        "sounds", "install", "--to", str(target),
        "--formats", ",".join(ALL_FORMATS), "--languages", ",".join(LANGUAGES),
        cwd=elsewhere,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return target, done.stdout


def installed_file(target: Path, lang: str, name: str, ext: str) -> Path:
    return target / lang / "switchboard" / f"{name}.{ext}"


def source_samples(lang: str, name: str) -> array.array[int]:
    return sounds.read_wav((SOUNDS / lang / "switchboard" / f"{name}.wav").read_bytes(), name)


def sox_decode(*args: str) -> array.array[int]:
    """What sox reads from ``args`` (input options, the file, output options), as native
    16-bit samples."""
    out = subprocess.run(
        [SOX, "-D", *args, "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", "-"],
        capture_output=True,
        check=True,
    ).stdout
    samples = array.array("h", out)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def snr_db(reference: Sequence[int], decoded: Sequence[int]) -> float:
    """Signal-to-noise ratio of ``decoded`` against ``reference``, sample for sample."""
    assert len(decoded) == len(reference)
    signal = sum(v * v for v in reference)
    noise = sum((a - b) ** 2 for a, b in zip(reference, decoded, strict=True))
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


# --- the command ----------------------------------------------------------------------


def test_every_prompt_is_written_in_every_format_in_asterisks_layout(
    installed: tuple[Path, str],
) -> None:
    target, _ = installed
    written = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert written == {
        f"{lang}/switchboard/{name}.{ext}" for lang, name in SHIPPED for ext in ALL_FORMATS
    }
    for path in target.rglob("*"):
        if path.is_file():  # Asterisk runs as its own user
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_the_command_reports_how_many_files_of_each_format_it_wrote(
    installed: tuple[Path, str],
) -> None:
    target, report = installed
    per_language = len(SHIPPED) // len(LANGUAGES)
    assert report.splitlines() == [
        f"{len(SHIPPED) * len(ALL_FORMATS)} file(s) written to {target} ({', '.join(LANGUAGES)})",
        *(f"  {fmt:<6} {len(SHIPPED)} written, 0 unchanged" for fmt in ALL_FORMATS),
    ]
    assert per_language * len(LANGUAGES) == len(SHIPPED)


def test_installing_again_gives_the_same_bytes_and_writes_nothing(
    installed: tuple[Path, str], tmp_path: Path
) -> None:
    target, _ = installed
    again = switchboard(
        "sounds", "install", "--to", str(target), "--formats", ",".join(ALL_FORMATS),
        "--languages", "en", cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    count = sum(1 for lang, _ in SHIPPED if lang == "en")
    assert again.stdout.splitlines() == [
        f"0 file(s) written to {target} (en)",
        *(f"  {fmt:<6} 0 written, {count} unchanged" for fmt in ALL_FORMATS),
    ]


def test_by_default_it_writes_wav_ulaw_and_alaw_of_every_shipped_language(
    tmp_path: Path,
) -> None:
    done = switchboard("sounds", "install", "--to", str(tmp_path / "s"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = {p.relative_to(tmp_path / "s").as_posix() for p in tmp_path.rglob("*.*")}
    assert written == {
        f"{lang}/switchboard/{name}.{ext}"
        for lang, name in SHIPPED
        for ext in sounds.DEFAULT_FORMATS
    }
    assert sounds.DEFAULT_FORMATS == ("wav", "ulaw", "alaw")
    assert LANGUAGES == ["en", "ru"]


def test_a_file_that_differs_is_kept_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "sounds"
    args = ("sounds", "install", "--to", str(target), "--formats", "ulaw", "--languages", "en")
    assert switchboard(*args, cwd=tmp_path).returncode == 0
    mine = target / "en" / "switchboard" / "welcome.ulaw"
    mine.write_bytes(b"a recording of our own")
    missing = target / "en" / "switchboard" / "goodbye.ulaw"
    missing.unlink()

    refused = switchboard(*args, cwd=tmp_path)
    assert refused.returncode == 1
    assert "1 file(s) already there differ" in refused.stderr
    assert str(mine) in refused.stderr
    assert "--force" in refused.stderr
    assert mine.read_bytes() == b"a recording of our own"
    assert not missing.exists()  # nothing at all is written

    forced = switchboard(*args, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    count = sum(1 for lang, _ in SHIPPED if lang == "en")
    assert forced.stdout.splitlines()[1] == f"  ulaw   1 written, 1 replaced, {count - 2} unchanged"
    assert mine.read_bytes() == sounds.g711(source_samples("en", "welcome"), "ulaw")
    assert missing.exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--formats", "wav,mp3", "unknown format 'mp3' (known: wav, ulaw, alaw, g722, sln16)"),
        ("--languages", "en,de", "unknown language 'de' (known: en, ru)"),
        ("--formats", ",", "no format given"),
    ],
)
def test_an_unknown_format_or_language_is_refused(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    done = switchboard(
        "sounds", "install", "--to", str(tmp_path / "s"), option, value, cwd=tmp_path
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "s").exists()


# --- each file as Asterisk reads it ---------------------------------------------------


@needs_sox
@pytest.mark.parametrize(("lang", "name"), SHIPPED)
def test_the_wav_is_asterisks_8khz_16bit_mono(
    installed: tuple[Path, str], lang: str, name: str
) -> None:
    path = installed_file(installed[0], lang, name, "wav")
    info = {
        key.strip(): value.strip()
        for key, _, value in (
            line.partition(":")
            for line in subprocess.run(
                [SOXI, str(path)], capture_output=True, text=True, check=True
            ).stdout.splitlines()
        )
    }
    assert info["Channels"] == "1"
    assert info["Sample Rate"] == "8000"
    assert info["Precision"] == "16-bit"
    assert info["Sample Encoding"] == "16-bit Signed Integer PCM"
    assert path.read_bytes() == (SOUNDS / lang / "switchboard" / f"{name}.wav").read_bytes()


@needs_sox
@pytest.mark.parametrize(("law", "sox_type"), [("ulaw", "ul"), ("alaw", "al")])
@pytest.mark.parametrize(("lang", "name"), SHIPPED)
def test_g711_decodes_to_the_prompt_within_g711s_quantisation_error(
    installed: tuple[Path, str], lang: str, name: str, law: str, sox_type: str
) -> None:
    path = installed_file(installed[0], lang, name, law)
    source = source_samples(lang, name)
    assert path.stat().st_size == len(source)  # 8 kHz, one byte a sample
    decoded = sox_decode("-t", sox_type, "-r", "8000", "-c", "1", str(path))
    # G.711's 8-bit log PCM keeps speech at about 38 dB SNR (a 1 kHz tone at -6 dBFS:
    # 34 dB here); the wrong law, byte order or bit inversion falls to near 0 dB.
    assert snr_db(source, decoded) > 30


@needs_sox
@pytest.mark.parametrize(("lang", "name"), SHIPPED)
def test_sln16_has_twice_the_samples_and_resamples_back_to_the_prompt(
    installed: tuple[Path, str], lang: str, name: str
) -> None:
    path = installed_file(installed[0], lang, name, "sln16")
    source = source_samples(lang, name)
    raw = ("-t", "raw", "-r", "16000", "-e", "signed-integer", "-b", "16", "-c", "1", "-L")
    wide = sox_decode(*raw, str(path))
    assert len(wide) == 2 * len(source)
    assert wide[0::2] == source  # the half-band filter keeps the original samples
    back = sox_decode(*raw, str(path), "-r", "8000")
    # Resampled back by sox's own filter: ours and sox's differ only in how they roll
    # off the last ~200 Hz below 4 kHz, giving 36-87 dB on these prompts.  The naive
    # interpolations this must not be stay under it: linear 20-28 dB, repeating each
    # sample 11 dB.
    assert snr_db(source, back) > 30
    # and sox's own upsampling of the WAV agrees with ours as closely (39-87 dB)
    assert (
        snr_db(sox_decode(str(SOUNDS / lang / "switchboard" / f"{name}.wav"), "-r", "16000"), wide)
        > 30
    )


G722_DELAY = 22  # 16 kHz samples through G.722's transmit and receive QMFs (24 taps each)


@pytest.mark.parametrize(("lang", "name"), SHIPPED)
def test_g722_decodes_to_the_prompt_and_lasts_as_long(
    installed: tuple[Path, str], lang: str, name: str
) -> None:
    data = installed_file(installed[0], lang, name, "g722").read_bytes()
    source = source_samples(lang, name)
    # 64 kbit/s: 8000 bytes a second, one byte a pair of 16 kHz samples
    assert len(data) / g722.BYTES_PER_SECOND == len(source) / sounds.SOURCE_RATE
    decoded = g722_reference.decode(data)
    assert len(decoded) == 2 * len(source)
    # Every other decoded sample, past the codec's delay, is one of the source's (the
    # encoder was fed the sln16 signal, whose even samples are the source's).
    aligned = decoded[G722_DELAY::2]
    # G.722's ADPCM (6 bits in the low band, where all this narrowband speech is) gives
    # 31-47 dB on these prompts; a misplaced bit or a wrong table loses the signal.
    assert snr_db(source[: len(aligned)], aligned) > 25


# --- the codecs themselves ------------------------------------------------------------


def codec_test_signal() -> list[int]:
    """One second at 16 kHz reaching the codec's corners: full-scale noise (with both
    extremes), quiet noise, a 400 Hz sawtooth, then silence."""
    out = []
    seed = 12345
    for i in range(16000):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        noise = (seed >> 15) - 32768
        quarter = i // 4000
        if quarter == 0:
            value = (-32768, 32767, noise)[min(i % 500, 2)]
        elif quarter == 1:
            value = noise >> 4
        elif quarter == 2:
            value = ((i % 40) - 20) * 1500
        else:
            value = 0
        out.append(value)
    return out


# SHA-256 of what Asterisk's own C gives, compiled with a small driver: for
# codec_test_signal(), codecs/g722/g722_encode.c with g722_encode_init(s, 64000, 0)
# (and G722_SAMPLE_RATE_8000, fed every other sample), g722_decode.c decoding the
# first; for every 16-bit value -32768..32767 in turn, the __ast_lin2mu / __ast_lin2a
# lookups that main/ulaw.c and main/alaw.c build (AST_LIN2MU, AST_LIN2A).
C_G722_16K = "773adc4b67026f12070a6e8d8cdfa95ed8c884a41b1cb9de95d126b45d1eb456"
C_G722_8K = "4253ddb8cf4f5d8c69d8cfab6c588d415dfb23be129455bf6c8528ef2868d377"
C_G722_DECODED = "7c5fc34b877777ac44e34334b676f493c1c78c8c3151008fad9fb0415a9a346c"
C_ULAW_TABLE = "90c29de505fb68e766118303bd552a16005dcf810873698bee1d8f3b247ce28c"
C_ALAW_TABLE = "38488f6fd710f4686360edc4d38639f96c491595ef93f8eb8d62d5e07ca6ce7b"
EVERY_VALUE = array.array("h", range(-32768, 32768))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_g722_encoder_gives_the_same_bytes_as_asterisks() -> None:
    signal = codec_test_signal()
    assert len(g722.encode(signal)) == len(signal) // 2
    assert sha256(g722.encode(signal)) == C_G722_16K
    assert sha256(g722.encode(signal[::2], eight_k=True)) == C_G722_8K


def test_the_reference_decoder_gives_the_same_samples_as_asterisks() -> None:
    decoded = array.array("h", g722_reference.decode(g722.encode(codec_test_signal())))
    if sys.byteorder == "big":
        decoded.byteswap()
    assert sha256(decoded.tobytes()) == C_G722_DECODED


def test_g711_gives_the_same_bytes_as_asterisks_tables() -> None:
    assert sha256(sounds.g711(EVERY_VALUE, "ulaw")) == C_ULAW_TABLE
    assert sha256(sounds.g711(EVERY_VALUE, "alaw")) == C_ALAW_TABLE


@needs_sox
@pytest.mark.parametrize(("law", "sox_type"), [("ulaw", "ul"), ("alaw", "al")])
def test_every_16_bit_value_decodes_back_within_a_g711_step(law: str, sox_type: str) -> None:
    coded = sounds.g711(EVERY_VALUE, law)
    decoded = subprocess.run(
        [SOX, "-D", "-t", sox_type, "-r", "8000", "-c", "1", "-",
         "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", "-"],
        input=coded, capture_output=True, check=True,
    ).stdout  # fmt: skip
    values = array.array("h", decoded)
    if sys.byteorder == "big":
        values.byteswap()
    assert len(values) == len(EVERY_VALUE)
    # a G.711 step is 1/16 of its segment's level, the smallest 8 (A-law: 16 at 0)
    for value, back in zip(EVERY_VALUE, values, strict=True):
        assert abs(back - value) <= abs(value) / 16 + 8, (value, back)


def kaiser(m: int, half: int, beta: float) -> float:
    def bessel_i0(x: float) -> float:
        total = term = 1.0
        k = 1
        while term > 1e-20 * total:
            term *= (x / (2 * k)) ** 2
            total += term
            k += 1
        return total

    return bessel_i0(beta * math.sqrt(1 - (m / half) ** 2)) / bessel_i0(beta)


def test_the_interpolation_filter_is_the_documented_windowed_sinc() -> None:
    designed = [
        round(math.sin(math.pi * m / 2) / (math.pi * m / 2) * kaiser(m, 63, 10.0) * 2**20)
        for m in range(1, 64, 2)
    ]
    table = list(sounds.HALF_BAND_Q20)
    assert table[1:] == designed[1:]
    assert table[0] == designed[0] + 2
    assert 2 * sum(table) == 2**20  # DC passes with gain 1


def test_resampling_keeps_a_tone_and_rejects_its_image() -> None:
    # a 1 kHz tone at 8 kHz, upsampled: at 16 kHz, still 1 kHz, no 7 kHz image
    tone = [round(10000 * math.sin(2 * math.pi * 1000 * n / 8000)) for n in range(800)]
    wide = sounds.upsample_2x(tone)

    def level(freq: float) -> float:
        part = wide[200:1400]  # away from the ends
        re = sum(v * math.cos(2 * math.pi * freq * n / 16000) for n, v in enumerate(part))
        im = sum(v * math.sin(2 * math.pi * freq * n / 16000) for n, v in enumerate(part))
        return 2 * math.hypot(re, im) / len(part)

    assert level(1000) == pytest.approx(10000, rel=0.001)
    assert level(7000) < 10000 * 10 ** (-80 / 20)
