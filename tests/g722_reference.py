"""A G.722 decoder for the tests: sox cannot read G.722, so this checks the encoder.

A port of Asterisk's ``codecs/g722/g722_decode.c`` (Steve Underwood's spandsp
code, placed in the public domain, based on the CMU G.722 codec), written apart
from ``switchboard.g722`` on purpose -- its own tables, its own ``block4`` -- so
that a slip in the encoder's port is not mirrored here and hidden.  Only the
unpacked 64 kbit/s stream is decoded (8 bits a code: what Asterisk's ``g722``
files hold), to 16 kHz linear (or 8 kHz with ``eight_k``, the low band only).
"""

from __future__ import annotations

WL = (-60, -30, 58, 172, 334, 538, 1198, 3042)
RL42 = (0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0)
ILB = (
    2048, 2093, 2139, 2186, 2233, 2282, 2332,
    2383, 2435, 2489, 2543, 2599, 2656, 2714,
    2774, 2834, 2896, 2960, 3025, 3091, 3158,
    3228, 3298, 3371, 3444, 3520, 3597, 3676,
    3756, 3838, 3922, 4008,
)  # fmt: skip
WH = (0, -214, 798)
RH2 = (2, 1, 2, 1)
QM2 = (-7408, -1616, 7408, 1616)
QM4 = (
    0, -20456, -12896, -8968,
    -6288, -4240, -2584, -1200,
    20456, 12896, 8968, 6288,
    4240, 2584, 1200, 0,
)  # fmt: skip
QM6 = (
    -136, -136, -136, -136,
    -24808, -21904, -19008, -16704,
    -14984, -13512, -12280, -11192,
    -10232, -9360, -8576, -7856,
    -7192, -6576, -6000, -5456,
    -4944, -4464, -4008, -3576,
    -3168, -2776, -2400, -2032,
    -1688, -1360, -1040, -728,
    24808, 21904, 19008, 16704,
    14984, 13512, 12280, 11192,
    10232, 9360, 8576, 7856,
    7192, 6576, 6000, 5456,
    4944, 4464, 4008, 3576,
    3168, 2776, 2400, 2032,
    1688, 1360, 1040, 728,
    432, 136, -432, -136,
)  # fmt: skip
QMF_COEFFS = (3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11)


def _saturate(amp: int) -> int:
    if amp > 32767:
        return 32767
    return -32768 if amp < -32768 else amp


def _int16(value: int) -> int:
    """The C cast ``(int16_t) value``: wraps, does not clamp."""
    return ((value + 32768) & 0xFFFF) - 32768


class _Band:
    def __init__(self, det: int) -> None:
        self.s = self.sp = self.sz = self.nb = 0
        self.det = det
        self.r = [0] * 3
        self.a = [0] * 3
        self.ap = [0] * 3
        self.p = [0] * 3
        self.d = [0] * 7
        self.b = [0] * 7
        self.bp = [0] * 7
        self.sg = [0] * 7


def _block4(s: _Band, d: int) -> None:
    r, a, ap, p, dd, b, bp, sg = s.r, s.a, s.ap, s.p, s.d, s.b, s.bp, s.sg
    # Block 4, RECONS
    dd[0] = d
    r[0] = _saturate(s.s + d)
    # Block 4, PARREC
    p[0] = _saturate(s.sz + d)
    # Block 4, UPPOL2
    for i in range(3):
        sg[i] = p[i] >> 15
    wd1 = _saturate(a[1] << 2)
    wd2 = -wd1 if sg[0] == sg[1] else wd1
    wd2 = min(wd2, 32767)
    wd3 = 128 if sg[0] == sg[2] else -128
    wd3 += wd2 >> 7
    wd3 += (a[2] * 32512) >> 15
    if wd3 > 12288:
        wd3 = 12288
    elif wd3 < -12288:
        wd3 = -12288
    ap[2] = wd3
    # Block 4, UPPOL1
    sg[0] = p[0] >> 15
    sg[1] = p[1] >> 15
    wd1 = 192 if sg[0] == sg[1] else -192
    wd2 = (a[1] * 32640) >> 15
    ap[1] = _saturate(wd1 + wd2)
    wd3 = _saturate(15360 - ap[2])
    if ap[1] > wd3:
        ap[1] = wd3
    elif ap[1] < -wd3:
        ap[1] = -wd3
    # Block 4, UPZERO
    wd1 = 0 if d == 0 else 128
    sg[0] = d >> 15
    for i in range(1, 7):
        sg[i] = dd[i] >> 15
        wd2 = wd1 if sg[i] == sg[0] else -wd1
        wd3 = (b[i] * 32640) >> 15
        bp[i] = _saturate(wd2 + wd3)
    # Block 4, DELAYA
    for i in range(6, 0, -1):
        dd[i] = dd[i - 1]
        b[i] = bp[i]
    for i in range(2, 0, -1):
        r[i] = r[i - 1]
        p[i] = p[i - 1]
        a[i] = ap[i]
    # Block 4, FILTEP
    wd1 = _saturate(r[1] + r[1])
    wd1 = (a[1] * wd1) >> 15
    wd2 = _saturate(r[2] + r[2])
    wd2 = (a[2] * wd2) >> 15
    s.sp = _saturate(wd1 + wd2)
    # Block 4, FILTEZ
    sz = 0
    for i in range(6, 0, -1):
        wd1 = _saturate(dd[i] + dd[i])
        sz += (b[i] * wd1) >> 15
    s.sz = _saturate(sz)
    # Block 4, PREDIC
    s.s = _saturate(s.sp + s.sz)


def decode(g722_data: bytes, *, eight_k: bool = False) -> list[int]:
    """``g722_decode_init(s, 64000, eight_k ? G722_SAMPLE_RATE_8000 : 0)`` + ``g722_decode``."""
    low, high = _Band(32), _Band(8)
    x = [0] * 24
    amp: list[int] = []
    rhigh = 0
    for code in g722_data:
        # bits_per_sample == 8
        wd1 = code & 0x3F
        ihigh = (code >> 6) & 0x03
        wd2 = QM6[wd1]
        wd1 >>= 2
        # Block 5L, LOW BAND INVQBL
        wd2 = (low.det * wd2) >> 15
        # Block 5L, RECONS
        rlow = low.s + wd2
        # Block 6L, LIMIT
        rlow = max(-16384, min(16383, rlow))
        # Block 2L, INVQAL
        wd2 = QM4[wd1]
        dlowt = (low.det * wd2) >> 15
        # Block 3L, LOGSCL
        wd2 = RL42[wd1]
        wd1 = (low.nb * 127) >> 7
        wd1 += WL[wd2]
        low.nb = max(0, min(18432, wd1))
        # Block 3L, SCALEL
        wd1 = (low.nb >> 6) & 31
        wd2 = 8 - (low.nb >> 11)
        wd3 = (ILB[wd1] << -wd2) if wd2 < 0 else (ILB[wd1] >> wd2)
        low.det = wd3 << 2
        _block4(low, dlowt)

        if not eight_k:
            # Block 2H, INVQAH
            wd2 = QM2[ihigh]
            dhigh = (high.det * wd2) >> 15
            # Block 5H, RECONS
            rhigh = dhigh + high.s
            # Block 6H, LIMIT
            rhigh = max(-16384, min(16383, rhigh))
            # Block 2H, INVQAH
            wd2 = RH2[ihigh]
            wd1 = (high.nb * 127) >> 7
            wd1 += WH[wd2]
            high.nb = max(0, min(22528, wd1))
            # Block 3H, SCALEH
            wd1 = (high.nb >> 6) & 31
            wd2 = 10 - (high.nb >> 11)
            wd3 = (ILB[wd1] << -wd2) if wd2 < 0 else (ILB[wd1] >> wd2)
            high.det = wd3 << 2
            _block4(high, dhigh)

        if eight_k:
            amp.append(_int16(rlow << 1))
        else:
            # Apply the receive QMF
            x[:22] = x[2:]
            x[22] = rlow + rhigh
            x[23] = rlow - rhigh
            xout1 = 0
            xout2 = 0
            for i in range(12):
                xout2 += x[2 * i] * QMF_COEFFS[i]
                xout1 += x[2 * i + 1] * QMF_COEFFS[11 - i]
            amp.append(_int16(xout1 >> 11))
            amp.append(_int16(xout2 >> 11))
    return amp
