"""Which ordered endpoints a task of this process is sending: a message for one is left to the
sender and noted; the sender stops only when no message was noted since its last look."""

from ethhook.deliver.ordered import Senders


def test_a_message_is_left_to_the_endpoints_sender_only_while_there_is_one():
    senders = Senders()
    assert not senders.defer_to_sender(7)  # nobody sends endpoint 7: the message claims itself
    assert senders.start(7)
    assert not senders.start(7)  # one sender per endpoint in a process
    assert senders.defer_to_sender(7)
    assert not senders.defer_to_sender(8)  # another endpoint's message is its own


def test_the_sender_claims_again_when_a_message_was_left_to_it_since_its_last_look():
    senders = Senders()
    senders.start(7)
    senders.defer_to_sender(7)
    assert not senders.stop_unless_noted(7)  # claim again: the message's deliveries may be new
    assert senders.defer_to_sender(7)  # still the sender
    assert not senders.stop_unless_noted(7)
    assert senders.stop_unless_noted(7)  # nothing noted since: it stops
    assert not senders.defer_to_sender(7)  # and the next message claims itself


def test_a_sender_that_stops_early_leaves_no_role_or_note_behind():
    senders = Senders()
    senders.start(7)
    senders.defer_to_sender(7)
    senders.stop(7)
    assert not senders.defer_to_sender(7)
    assert senders.start(7) and senders.stop_unless_noted(7)
