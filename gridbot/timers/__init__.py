"""Everything that happens because time passed: where the timers are.

- :mod:`~gridbot.timers.scheduler`: APScheduler, which only wakes the worker (a sweep
  every few seconds and a one-off wake at the next deadline);
- :mod:`~gridbot.timers.worker`: the worker and its timed sources, wired in one place
  (:func:`~gridbot.timers.worker.build_worker`): case deadlines
  (:class:`gridbot.escalation.DeadlineSweep`), the morning digest, scheduled notices,
  report offers, messages set aside, the outbox;
- :mod:`~gridbot.timers.digest`: the morning digest, a recurring job claimed in the database.

Deadlines themselves live in the database (:mod:`gridbot.policy.deadlines` derives them from a
case); which process runs a job only one may run is :mod:`gridbot.singleton_duties`.
"""
