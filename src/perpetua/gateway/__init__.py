"""Perpetua gateway package."""
