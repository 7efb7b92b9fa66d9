"""The sender's window against a hostile receiver: acknowledgements cannot open it past what was sent."""

from __future__ import annotations

import asyncio

from fed._transport.sender import jittered
from fed._transport.streamed import Window


def test_a_receiver_that_acknowledges_more_than_it_got_does_not_open_the_senders_window():
    async def main():
        window = Window(100)
        window.ack(0)
        await window.reserve(100)
        window.ack(2**63)  # a hostile receiver: "I have it all"
        assert window.acked == 100  # not past what was sent
        window.ack(10)  # and never back
        assert window.acked == 100
        await window.reserve(100)
        waiting = asyncio.ensure_future(window.reserve(100))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # the window still holds: 100 sent, unacknowledged
        window.ack(2**62)
        await asyncio.wait_for(waiting, 1)

    asyncio.run(main())


def test_a_retry_waits_between_half_its_backoff_step_and_the_step():
    waits = [jittered(1.0) for _ in range(2000)]

    assert 0.5 <= min(waits) and max(waits) <= 1.0  # "at most a second apart" while there is no room
    assert max(waits) - min(waits) > 0.4  # and spread, so that pushes that failed together part
