"""A G.722 encoder (ITU-T G.722, 7 kHz audio coding within 64 kbit/s), in pure Python.

A faithful port of the encoder in Asterisk's ``codecs/g722/g722_encode.c`` and
``g722.h``, which is Steve Underwood's spandsp code ("Despite my general liking of
the GPL, I place my own contributions to this code in the public domain"), itself
based on the CMU single-channel G.722 codec (Chengxiang Lu and Alex Hauptmann,
1993).  spandsp's implementation is bit exact with the ITU-T test vectors; this
port keeps its integer arithmetic step for step (the C ``saturate()`` to 16 bits,
arithmetic right shifts, the same tables), so it gives the same bytes as
Asterisk's own translator for the same input.  Block names in the comments
(SUBTRA, QUANTL, ...) are those of the G.722 recommendation.

Only pure computation here: no file or network I/O (``switchboard.sounds`` reads
and writes the files).  The ITU test mode (band-split filters disabled), which
the C code has as a field no public function sets, is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import mul
from typing import Final

SAMPLE_RATE: Final = 16000  # linear input of the normal (wideband) mode
BYTES_PER_SECOND: Final = 8000  # at 64 kbit/s, unpacked: one byte per pair of 16 kHz samples

_Q6: Final = (
    0, 35, 72, 110, 150, 190, 233, 276,
    323, 370, 422, 473, 530, 587, 650, 714,
    786, 858, 940, 1023, 1121, 1219, 1339, 1458,
    1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
)  # fmt: skip
_ILN: Final = (
    0, 63, 62, 31, 30, 29, 28, 27,
    26, 25, 24, 23, 22, 21, 20, 19,
    18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
)  # fmt: skip
_ILP: Final = (
    0, 61, 60, 59, 58, 57, 56, 55,
    54, 53, 52, 51, 50, 49, 48, 47,
    46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
)  # fmt: skip
_WL: Final = (-60, -30, 58, 172, 334, 538, 1198, 3042)
_RL42: Final = (0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0)
_ILB: Final = (
    2048, 2093, 2139, 2186, 2233, 2282, 2332,
    2383, 2435, 2489, 2543, 2599, 2656, 2714,
    2774, 2834, 2896, 2960, 3025, 3091, 3158,
    3228, 3298, 3371, 3444, 3520, 3597, 3676,
    3756, 3838, 3922, 4008,
)  # fmt: skip
_QM4: Final = (
    0, -20456, -12896, -8968,
    -6288, -4240, -2584, -1200,
    20456, 12896, 8968, 6288,
    4240, 2584, 1200, 0,
)  # fmt: skip
_QM2: Final = (-7408, -1616, 7408, 1616)
QMF_COEFFS: Final = (3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11)
_QMF_REVERSED: Final = QMF_COEFFS[::-1]
_IHN: Final = (0, 1, 0)
_IHP: Final = (0, 3, 2)
_WH: Final = (0, -214, 798)
_RH2: Final = (2, 1, 2, 1)

_BITS_FOR_RATE: Final = {48000: 6, 56000: 7, 64000: 8}


def saturate(amp: int) -> int:
    """The C ``saturate()``: clamp to a 16-bit signed value."""
    if amp > 32767:
        return 32767
    if amp < -32768:
        return -32768
    return amp


class Band:
    """One sub-band's adaptive predictor and quantiser state (``band[]`` in g722.h; its
    ``sg[]`` is only scratch within ``block4`` and is kept in locals here)."""

    __slots__ = ("a", "ap", "b", "bp", "d", "det", "nb", "p", "r", "s", "sp", "sz")

    def __init__(self, det: int) -> None:
        self.s = 0
        self.sp = 0
        self.sz = 0
        self.r = [0, 0, 0]
        self.a = [0, 0, 0]
        self.ap = [0, 0, 0]
        self.p = [0, 0, 0]
        self.d = [0] * 7
        self.b = [0] * 7
        self.bp = [0] * 7
        self.nb = 0
        self.det = det


def block4(band: Band, d: int) -> None:
    """Block 4 of G.722: reconstruction and the pole/zero predictor update (``block4()``).

    The decoder has its own copy (tests/g722_reference.py), as in the C."""
    r, a, ap, p = band.r, band.a, band.ap, band.p
    dd, b, bp = band.d, band.b, band.bp

    # Block 4, RECONS
    dd[0] = d
    r[0] = saturate(band.s + d)

    # Block 4, PARREC
    p[0] = saturate(band.sz + d)

    # Block 4, UPPOL2
    sg0, sg1, sg2 = p[0] >> 15, p[1] >> 15, p[2] >> 15
    wd1 = saturate(a[1] << 2)
    wd2 = -wd1 if sg0 == sg1 else wd1
    wd2 = min(wd2, 32767)
    wd3 = (wd2 >> 7) + (128 if sg0 == sg2 else -128)
    wd3 += (a[2] * 32512) >> 15
    ap[2] = max(-12288, min(12288, wd3))

    # Block 4, UPPOL1 (sg[0], sg[1] are p[0], p[1]'s signs still)
    wd1 = 192 if sg0 == sg1 else -192
    wd2 = (a[1] * 32640) >> 15
    ap1 = saturate(wd1 + wd2)
    wd3 = saturate(15360 - ap[2])
    if ap1 > wd3:
        ap1 = wd3
    elif ap1 < -wd3:
        ap1 = -wd3
    ap[1] = ap1

    # Block 4, UPZERO
    wd1 = 0 if d == 0 else 128
    sg0 = d >> 15
    for i in range(1, 7):
        wd2 = (wd1 if dd[i] >> 15 == sg0 else -wd1) + ((b[i] * 32640) >> 15)
        bp[i] = wd2 if -32768 <= wd2 <= 32767 else saturate(wd2)

    # Block 4, DELAYA
    dd[1:7] = dd[0:6]
    b[1:7] = bp[1:7]
    r[2], r[1] = r[1], r[0]
    p[2], p[1] = p[1], p[0]
    a[2], a[1] = ap[2], ap[1]

    # Block 4, FILTEP
    wd1 = (a[1] * saturate(r[1] + r[1])) >> 15
    wd2 = (a[2] * saturate(r[2] + r[2])) >> 15
    band.sp = saturate(wd1 + wd2)

    # Block 4, FILTEZ
    sz = 0
    for i in range(6, 0, -1):
        wd1 = dd[i] + dd[i]
        sz += (b[i] * (wd1 if -32768 <= wd1 <= 32767 else saturate(wd1))) >> 15
    band.sz = saturate(sz)

    # Block 4, PREDIC
    band.s = saturate(band.sp + band.sz)


def scale(nb: int, shift_base: int) -> int:
    """Blocks 3L SCALEL / 3H SCALEH: the quantiser scale factor from ``nb``."""
    wd1 = (nb >> 6) & 31
    wd2 = shift_base - (nb >> 11)
    wd3 = (_ILB[wd1] << -wd2) if wd2 < 0 else (_ILB[wd1] >> wd2)
    return wd3 << 2


class G722Encoder:
    """``g722_encode_init()`` + ``g722_encode()``: linear 16-bit samples in, G.722 codes out.

    ``rate`` is the bit rate, 64000 (8 bits a code), 56000 or 48000.  With
    ``eight_k`` the input is 8 kHz audio coded into the low band only, the high
    band's bits left as ones (``G722_SAMPLE_RATE_8000``, what Asterisk's
    ``slin`` -> ``g722`` translator does); otherwise the input is 16 kHz and split
    by the transmit QMF.  ``packed`` packs 6- or 7-bit codes into bytes
    (``G722_PACKED``; 64 kbit/s is never packed).  The state carries over between
    calls to :meth:`encode`, as in C.
    """

    def __init__(self, rate: int = 64000, *, eight_k: bool = False, packed: bool = False) -> None:
        self.bits_per_sample = _BITS_FOR_RATE.get(rate, 8)
        self.eight_k = eight_k
        self.packed = packed and self.bits_per_sample != 8
        self.x = [0] * 24
        self.band = (Band(32), Band(8))
        self.out_buffer = 0
        self.out_bits = 0

    def encode(self, amp: Sequence[int]) -> bytes:
        """Encode ``amp`` (16-bit signed samples; in wideband mode an even count: a
        trailing odd sample is dropped, as the C reads past no buffer end either)."""
        out = bytearray()
        x = self.x
        low, high = self.band
        shift_out = 8 - self.bits_per_sample
        step = 1 if self.eight_k else 2
        usable = len(amp) - (len(amp) % step)
        xhigh = 0
        for j in range(0, usable, step):
            if self.eight_k:
                xlow = amp[j] >> 1
            else:
                # Apply the transmit QMF: shuffle the buffer down, discard every other output
                del x[:2]
                x.append(amp[j])
                x.append(amp[j + 1])
                sumodd = sum(map(mul, x[0::2], QMF_COEFFS))  # x[2i] * qmf_coeffs[i]
                sumeven = sum(map(mul, x[1::2], _QMF_REVERSED))  # x[2i+1] * qmf_coeffs[11-i]
                xlow = (sumeven + sumodd) >> 14
                xhigh = (sumeven - sumodd) >> 14

            # Block 1L, SUBTRA
            el = saturate(xlow - low.s)

            # Block 1L, QUANTL
            wd = el if el >= 0 else -(el + 1)
            i = 1
            while i < 30:
                if wd < (_Q6[i] * low.det) >> 12:
                    break
                i += 1
            ilow = _ILN[i] if el < 0 else _ILP[i]

            # Block 2L, INVQAL
            ril = ilow >> 2
            dlow = (low.det * _QM4[ril]) >> 15

            # Block 3L, LOGSCL
            nb = ((low.nb * 127) >> 7) + _WL[_RL42[ril]]
            low.nb = max(0, min(18432, nb))

            # Block 3L, SCALEL
            low.det = scale(low.nb, 8)

            block4(low, dlow)

            if self.eight_k:
                # Just leave the high bits as zero (sic: as ones, 0xC0, in the C too)
                code = (0xC0 | ilow) >> shift_out
            else:
                # Block 1H, SUBTRA
                eh = saturate(xhigh - high.s)

                # Block 1H, QUANTH
                wd = eh if eh >= 0 else -(eh + 1)
                mih = 2 if wd >= (564 * high.det) >> 12 else 1
                ihigh = _IHN[mih] if eh < 0 else _IHP[mih]

                # Block 2H, INVQAH
                dhigh = (high.det * _QM2[ihigh]) >> 15

                # Block 3H, LOGSCH
                nb = ((high.nb * 127) >> 7) + _WH[_RH2[ihigh]]
                high.nb = max(0, min(22528, nb))

                # Block 3H, SCALEH
                high.det = scale(high.nb, 10)

                block4(high, dhigh)
                code = ((ihigh << 6) | ilow) >> shift_out

            if self.packed:
                # Pack the code bits
                self.out_buffer |= code << self.out_bits
                self.out_bits += self.bits_per_sample
                if self.out_bits >= 8:
                    out.append(self.out_buffer & 0xFF)
                    self.out_bits -= 8
                    self.out_buffer >>= 8
            else:
                out.append(code)
        return bytes(out)


def encode(samples: Sequence[int], *, eight_k: bool = False) -> bytes:
    """G.722 at 64 kbit/s of a whole recording, from a fresh encoder state."""
    return G722Encoder(64000, eight_k=eight_k).encode(samples)
