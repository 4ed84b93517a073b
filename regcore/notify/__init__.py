"""Telling the world a sweep ended: its events in the outbox and the :class:`Courier` that
delivers them (:mod:`regcore.notify.announce`), one webhook POST
(:mod:`regcore.notify.webhook`), and where webhooks may go (:mod:`regcore.notify.targets`).

Import the modules themselves: this package re-exports nothing, so the settings class can
read :mod:`regcore.notify.targets` without loading the store and Optuna."""
