"""Agora exchange: wire protocol, order book, matching engine and (later) the exchange process."""
