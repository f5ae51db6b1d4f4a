"""The wheel carries the repository's examples, sounds, dialplan snippets and schema.

They live at the top of the repository (where people look for them) and are
copied into the built package as ``switchboard/_data/`` (see
``switchboard/resources.py``).  Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("examples", "sounds", "dialplan", "schema.sql")  # switchboard.resources.SHIPPED


class BuildWithData(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads them from the checkout
        target = Path(self.build_lib) / "switchboard" / "_data"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in SHIPPED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name)
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithData})
