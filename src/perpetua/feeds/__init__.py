"""Perpetua feeds package."""
