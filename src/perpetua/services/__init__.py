"""Perpetua services package."""
