"""Platform adapters: each translates one platform to :class:`gridbot.domain.Incoming`
and sends :class:`gridbot.domain.Outgoing`; no platform type passes this package."""
