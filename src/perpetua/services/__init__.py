"""Perpetua services: non-money data in SQL (users, API keys, ...) and helpers that build
commands for the core (the faucet). Services reach the core only through commands."""
