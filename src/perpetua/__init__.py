"""Perpetua: a self-hosted crypto derivatives exchange with a BitMEX-compatible API."""

__version__ = "0.1.0"
