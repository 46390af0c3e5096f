"""WeChat: four platforms on wechatpy, one module each — the WeCom self-built app
(wecom.py), WeCom group robots (wecom_robot.py), the WeCom smart bot (wecom_smartbot.py)
and the Official Account (official_account.py) — with what they share (shared.py: API
clients, error sorting, callback checks, splitting) and their ``[wechat]`` settings
(settings.py).

Nothing is imported here, so the configuration can read the settings without loading
wechatpy."""
