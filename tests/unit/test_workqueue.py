"""The work queue's timers: a later look never postpones an earlier one."""

import asyncio

from autorollback.workqueue import WorkQueue


def test_an_earlier_recheck_wins_over_a_later_one() -> None:
    async def scenario() -> list[str]:
        done: list[str] = []

        async def process(uid: str) -> None:
            done.append(uid)

        q = WorkQueue(process, 1)
        q.start()
        q.add_after("a", 60)
        q.add_after("a", 0.05)  # sooner: replaces the 60 s timer
        q.add_after("a", 30)  # later: ignored
        await asyncio.sleep(0.3)
        await q.stop()
        return done

    assert asyncio.run(scenario()) == ["a"]
