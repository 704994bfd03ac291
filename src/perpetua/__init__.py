"""Perpetua: a self-hosted crypto derivatives exchange with a BitMEX-compatible API."""

from perpetua import corebuild

__version__ = "0.1.0"

# Before any core module loads: the compiled core when it is current, else the sources.
CORE_BUILD = corebuild.select()
