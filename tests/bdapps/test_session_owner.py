"""A session belongs to the subscriber whose address started it: a mo-cont from any other
address is refused with 400 E1312 before the ack and changes nothing. Real HTTP, both stores."""
from __future__ import annotations

from ..helpers.hop_stack import ACK, mo, wait_sent

OWNER = "tel:B%3C4pbgsmCqqB8o8nDxrIv3n2yDBaR3+JyPY1L0YsWNhGoUWzr5i1cE6g=="  # a masked address
OTHER = "tel:B%3C4pbgsmCqqB8o8nDxrIv3n2yDBaR3+JyPY1L0YsWNhGoUWzr5i1cE6G=="  # one letter apart


async def test_a_mo_cont_from_another_address_is_refused_and_changes_nothing(stack):
    assert await stack.post_mo(mo("owned", "r1", "mo-init", "*213#", OWNER)) == (200, ACK)
    await wait_sent(stack, 1)
    before = await stack.store.get_session("owned")

    status, answer = await stack.post_mo(mo("owned", "r2", "mo-cont", "2", OTHER))
    assert status == 400 and answer["statusCode"] == "E1312"
    assert "sourceAddress" in answer["statusDetail"]
    assert len(await wait_sent(stack, 2, timeout=0.5)) == 1  # no screen to anyone
    assert await stack.store.get_session("owned") == before

    # The owner's own hop, even with the refused requestId, goes through as if nothing happened.
    assert await stack.post_mo(mo("owned", "r2", "mo-cont", "2", OWNER)) == (200, ACK)
    sent = await wait_sent(stack, 2)
    assert len(sent) == 2 and sent[1]["destinationAddress"] == OWNER
    assert sent[1]["message"] == "বিলের পরিমাণ টাকায় লিখুন:"


async def test_the_owner_may_write_the_same_number_with_or_without_a_space(stack):
    assert await stack.post_mo(mo("spaced", "r1", "mo-init", "*213#", "tel: 8801812345678")) == (200, ACK)
    await wait_sent(stack, 1)
    assert await stack.post_mo(mo("spaced", "r2", "mo-cont", "2", "tel:8801812345678")) == (200, ACK)
    assert len(await wait_sent(stack, 2)) == 2
