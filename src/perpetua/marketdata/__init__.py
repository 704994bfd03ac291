"""Perpetua marketdata package."""
