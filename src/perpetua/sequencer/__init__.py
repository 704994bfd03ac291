"""Perpetua sequencer package."""
