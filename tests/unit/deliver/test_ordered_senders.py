"""Which ordered endpoints a task of this process is sending: a message for one is left to the
sender and noted; the sender stops only when no message was noted since its last look, and one
that stops early gets the messages left to it back."""

from ethhook.deliver.ordered import Senders
from ethhook.workqueue import DispatchGroup


def message(endpoint_id: int, n: int = 1) -> DispatchGroup:
    return DispatchGroup(endpoint_id, [n], f"m-{n}")


def test_a_message_is_left_to_the_endpoints_sender_only_while_there_is_one():
    senders = Senders()
    assert not senders.defer_to_sender(message(7))  # nobody sends 7: the message claims itself
    assert senders.start(7)
    assert not senders.start(7)  # one sender per endpoint in a process
    assert senders.defer_to_sender(message(7))
    assert not senders.defer_to_sender(message(8))  # another endpoint's message is its own


def test_the_sender_claims_again_when_a_message_was_left_to_it_since_its_last_look():
    senders = Senders()
    senders.start(7)
    senders.defer_to_sender(message(7))
    assert not senders.stop_unless_noted(7)  # claim again: the message's deliveries may be new
    assert senders.defer_to_sender(message(7))  # still the sender
    assert not senders.stop_unless_noted(7)
    assert senders.stop_unless_noted(7)  # nothing noted since: it stops
    assert not senders.defer_to_sender(message(7))  # and the next message claims itself


def test_a_sender_that_stops_early_gets_the_messages_left_to_it_back():
    senders = Senders()
    senders.start(7)
    senders.start(8)
    left = [message(7, 1), message(7, 2)]
    for m in (*left, message(8, 3)):
        senders.defer_to_sender(m)
    assert senders.stop(7) == left  # oldest first, to publish again
    assert not senders.defer_to_sender(message(7))  # no role is left behind
    assert senders.start(7) and senders.stop_unless_noted(7)  # nor a note
    assert senders.stop(7) == []  # each message is handed back once
    assert senders.stop(8) == [message(8, 3)]


def test_a_sender_that_finds_nothing_more_is_done_with_the_messages_left_to_it():
    senders = Senders()
    senders.start(7)
    senders.defer_to_sender(message(7))
    assert not senders.stop_unless_noted(7)
    assert senders.stop_unless_noted(7)  # its claim after the message sent, or held, its work
    assert senders.stop(7) == []
