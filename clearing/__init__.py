"""Clearing house: ledger, settlement, pre-trade risk, persistence (issue 4)."""
