"""Where the files a deployment needs are: examples, sounds, dialplan snippets, the schema.

In a source checkout (or an editable install) they are the repository's top-level
folders beside the package.  An installed wheel carries copies of them as package
data under ``switchboard/_data/`` (``setup.py`` copies them in at build time), so
``switchboard demo``, ``init`` and ``sounds install`` work from any folder.
"""

from __future__ import annotations

from pathlib import Path

PACKAGED = Path(__file__).resolve().parent / "_data"
CHECKOUT = Path(__file__).resolve().parent.parent

# what a wheel carries: a top-level file or folder of the repository each
SHIPPED = ("examples", "sounds", "dialplan", "schema.sql")


class MissingData(FileNotFoundError):
    """A shipped file is in neither place: a broken install."""


def data_path(name: str) -> Path:
    """``name`` (``examples/office.yaml``, ``dialplan``...) from the package, else the checkout."""
    top = name.split("/", 1)[0]
    if top not in SHIPPED:
        raise ValueError(f"{name}: not one of the shipped {', '.join(SHIPPED)}")
    for base in (PACKAGED, CHECKOUT):
        path = base / name
        if path.exists():
            return path
    raise MissingData(
        f"{name} is missing from this installation (looked in {PACKAGED} and {CHECKOUT}): "
        "reinstall switchboard"
    )
