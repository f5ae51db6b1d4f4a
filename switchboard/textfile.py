"""Text files people hand to the CLI (configurations, contacts CSV): UTF-8, bounded.

A file that is not UTF-8 (a CSV saved as latin-1 or cp1251 by a spreadsheet)
is one `TextFileError` naming the line of its first bad byte, never a
traceback; so is a file over the caller's size bound, which is found without
reading the rest of the file.
"""

from __future__ import annotations

import os
from pathlib import Path


class TextFileError(Exception):
    """The file cannot be read as text; ``line`` is 1-based (1 for the file as a whole)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class TooBig(TextFileError):
    """The file has more than the bytes its reader takes."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(1, f"the file is {size:,} bytes; at most {limit:,} are read")
        self.size = size
        self.limit = limit


def read_text_file(path: str | Path, max_bytes: int | None = None) -> str:
    """The file's text, newlines as `open` reads them; `TextFileError` if it is not text.

    With ``max_bytes``, a larger file is `TooBig` after reading one byte past
    the bound, whatever its size.
    """
    try:
        with open(path, "rb") as file:
            data = file.read(-1 if max_bytes is None else max_bytes + 1)
            if max_bytes is not None and len(data) > max_bytes:
                raise TooBig(os.fstat(file.fileno()).st_size, max_bytes)
    except OSError as exc:
        raise TextFileError(1, f"cannot read the file: {exc.strerror or exc}") from None
    return decode_utf8(data)


def decode_utf8(data: bytes) -> str:
    """``data`` as UTF-8 text with universal newlines; `TextFileError` at the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        raise TextFileError(
            data.count(b"\n", 0, exc.start) + 1,
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column "
            f"{exc.start - line_start + 1}; save the file as UTF-8",
        ) from None
    # what `open(path).read()` does: the line numbers of "\r\n" files stay right
    return text.replace("\r\n", "\n").replace("\r", "\n")
