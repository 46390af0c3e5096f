"""Every user-facing message, one folder per locale; installed as ``gridbot.templates``.

A package (not only a folder) so that an editable install finds it under that name, as
the wheel does: see :mod:`gridbot.paths`.
"""
