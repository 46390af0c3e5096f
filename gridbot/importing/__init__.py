"""``gridbot import``: the office's sheets into the configuration and the database."""
