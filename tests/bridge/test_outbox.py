"""The outbox: a command's state leads, then the queue in order, then the latest-wins slots."""

from __future__ import annotations

from bridge.outbox import Message, Outbox


def latest(topic: str, payload: bytes) -> Message:
    return Message(topic, payload, retain=True, coalesce=True)


def test_a_lead_state_goes_before_queued_events_and_answers() -> None:
    box = Outbox()
    box.put(Message("d/event", b"started"))
    box.put(Message("d/response", b"ok"))
    box.put_latest(latest("d/telemetry", b"t1"))
    box.put_latest(latest("d/state", b"s1"), lead=True)
    assert [m.topic for m in box.take()] == ["d/state", "d/event", "d/response", "d/telemetry"]


def test_a_newer_state_keeps_the_lead_of_the_one_it_replaces() -> None:
    """The control loop may tick between a command's state and the send: still state first."""
    box = Outbox()
    box.put_latest(latest("d/state", b"old"))
    box.put_latest(latest("d/state", b"lead"), lead=True)
    box.put(Message("d/event", b"started"))
    assert len(box) == 2
    box.put_latest(latest("d/state", b"tick"))
    assert [m.payload for m in box.take()] == [b"tick", b"started"]


def test_take_with_a_limit_leaves_the_rest_in_order_and_still_pending() -> None:
    box = Outbox()
    for i in range(5):
        box.put(Message("d/event", b"%d" % i))
    box.put_latest(latest("d/state", b"s"))
    assert [m.payload for m in box.take(2)] == [b"0", b"1"]
    assert len(box) == 4
    assert [m.payload for m in box.take(10)] == [b"2", b"3", b"4", b"s"]
    assert len(box) == 0


def test_a_given_back_state_never_overwrites_a_newer_lead_one() -> None:
    box = Outbox()
    sent = latest("d/state", b"old")
    box.put_latest(latest("d/state", b"new"), lead=True)
    box.give_back([sent, Message("d/event", b"e")])
    assert [m.payload for m in box.take()] == [b"new", b"e"]
