"""The decorator for events and actions: immutable to the type checker, cheap at run time.

Calls create dozens of these per second per call; a frozen dataclass pays an
``object.__setattr__`` per field on every construction (about twice the cost).
mypy sees them as frozen (`dataclass_transform` with ``frozen_default``), so
assigning to a field is still a type error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def message(cls: type[T]) -> type[T]:
    return dataclass(slots=True)(cls)
