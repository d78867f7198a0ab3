"""The call flow: a pure state machine over plain data.

`ivr.flow.step(plan, state, event) -> (state, actions)` decides what the caller hears next
and what the ticket should record. It does no I/O, reads no clock and knows nothing of HTTP,
TwiML, databases or speech engines: the adapters in `hotline` do.
"""
