"""Channel variables as the dialplan reads them: set in one ``EXEC MSet``, intact.

MSet's argument splitter (Asterisk's AST_STANDARD_APP_ARGS, ported in
`asterisk_sim.agi.separate_args`) splits on commas, nests on brackets and
removes quotes and backslashes; names of people and departments may hold
any of them.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agi_server.call import mset_value
from asterisk_sim.agi import separate_args
from tests.agi_stack import AgiStack
from tests.helpers import at, company_from
from tests.test_agi_route import CONFIG, STRANGER, TUESDAY


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.text(st.characters(blacklist_characters="\n\r\x00"), max_size=40), max_size=20
    )
)
def test_any_value_survives_msets_argument_splitting(values: list[str]) -> None:
    """Names of people and departments may hold commas, quotes, brackets, backslashes."""
    data = ",".join(f"V{i}={mset_value(v)}" for i, v in enumerate(values))
    pairs = [pair.partition("=") for pair in separate_args(data)] if values else []
    assert [value for _, _, value in pairs] == values


@pytest.mark.asyncio
async def test_variables_with_awkward_values_reach_the_channel_intact() -> None:
    config = company_from(CONFIG)
    awkward = 'a, (b [c] "d" \\ e=f'
    async with AgiStack(config, at(TUESDAY, config), {}) as stack:
        call = await stack.call(
            f"schedule?name={quote(awkward)}", caller=STRANGER, extension="74950000001"
        )
    assert call.variables["SWITCHBOARD_ERROR"] == f"no schedule {awkward!r}"
    assert [c.split()[:2] for _, c in call.commands] == [["EXEC", "MSet"]]
