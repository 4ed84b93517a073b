"""Plug-ins the tests register through ``REGSWEEP_PLUGINS`` (``tests.plugins.functions``)."""
