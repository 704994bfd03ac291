"""Perpetua web package."""
