"""``gridbot run`` with Telegram's flood limits lifted: one worker process of the
several-workers test and of bench/workers.py.

Exactly the command line's ``run`` (``python -m tests.worker_main --config FILE run``),
except that the outbox's Telegram limits (30 messages a second, 20 a minute into one
group) and python-telegram-bot's AIORateLimiter have no rates: against the local fake Bot
API they would measure the limits, not the workers, and make the test wait minutes.
"""

from __future__ import annotations

import sys

from telegram.ext import AIORateLimiter

from gridbot.adapters.telegram import adapter
from gridbot.cli import main
from gridbot.ratelimit import SendLimits

_build = adapter.build_application
adapter.TelegramAdapter.limits = SendLimits(concurrency=16)
adapter.build_application = lambda settings, *, rate_limiter=None, **options: _build(  # type: ignore[assignment]
    settings, rate_limiter=AIORateLimiter(overall_max_rate=0, group_max_rate=0), **options)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
