"""gridbot: the chat bot of a neighbourhood micro-grid (微网格).

Platform adapters feed one conversation engine that logs residents' reports as
cases, routes them to the steward on duty and tells everyone concerned through a
durable outbox.
"""

__version__ = "0.1.0"
