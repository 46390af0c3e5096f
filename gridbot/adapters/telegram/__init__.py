"""Telegram: the adapter (adapter.py, on python-telegram-bot), its HTML text and message
splitting (html.py) and its ``[telegram]`` settings (settings.py).

Nothing is imported here, so the configuration can read the settings without loading the
Telegram library."""
