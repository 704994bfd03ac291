"""Perpetua store package."""
