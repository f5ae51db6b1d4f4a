"""A clean-up runs to its end when the task is cancelled twice (issue 10's leaks).

A stop cancelling a call-back attempt while one of its own timeouts fired asked
for cancellation twice; the second request ended the teardown at its next await,
and the bridge stayed in Asterisk (1 run in ~10 of tests/test_callbacks.py's
two-instance test)."""

from __future__ import annotations

import asyncio

import pytest

from ari_app.legs import finish_even_if_cancelled


@pytest.mark.asyncio
async def test_a_second_cancel_during_the_clean_up_does_not_cut_it_short() -> None:
    steps: list[str] = []
    release = asyncio.Event()
    cleaning = asyncio.Event()

    async def clean_up() -> None:
        steps.append("hang up")
        cleaning.set()
        await release.wait()  # waiting for the legs to go
        steps.append("destroy bridge")

    started = asyncio.Event()

    async def call() -> None:
        try:
            started.set()
            await asyncio.Event().wait()  # the call, until stopped
        finally:
            await finish_even_if_cancelled(clean_up())

    task = asyncio.create_task(call())
    await started.wait()
    task.cancel()  # the stop
    await cleaning.wait()
    task.cancel()  # asked again while the clean-up waits
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["hang up", "destroy bridge"]


@pytest.mark.asyncio
async def test_an_error_in_the_clean_up_is_raised() -> None:
    async def clean_up() -> None:
        raise RuntimeError("bridge")

    with pytest.raises(RuntimeError, match="bridge"):
        await finish_even_if_cancelled(clean_up())
