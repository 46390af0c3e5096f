"""The office console: the cases, notices, people and figures of a community on web pages,
served by ``gridbot run`` under ``[web] path``.

It is another surface over the same engine, not a second system: what a person does on a
page is said to the engine as a message from the ``web`` platform (:mod:`gridbot.adapters.web`),
so the permissions, events, templates and notifications are the chat's own, and the page
shows the bot's answer. Reading pages query the store within the person's scope, as the
chat's listings do.
"""
