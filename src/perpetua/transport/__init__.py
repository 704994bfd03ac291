"""Perpetua transport package."""
