"""Policy: the rules a community could want different, each in one module.

- :mod:`~gridbot.policy.classification`: a report's category and priority from the
  configured words;
- :mod:`~gridbot.policy.workhours`: the working-time calendar (holidays, 调休) and quiet
  hours, which windows count in;
- :mod:`~gridbot.policy.deadlines`: what the clock will next do to a case (reminders,
  escalation, idle claims, 回访), derived from the case row;
- :mod:`~gridbot.policy.routing`: who is on duty, up the ladder;
- :mod:`~gridbot.policy.permissions`: who may use a command where, and act on which case;
- :mod:`~gridbot.policy.privacy`: what may reach a group (phones and addresses masked).

The values themselves are configuration (``[policy]``, ``[escalation]``, ``[calendar]``,
``[limits]``: :mod:`gridbot.config`); nothing is imported here, so each module loads
alone.
"""
