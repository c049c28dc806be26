"""The exchange's vocabulary: sides, order types, time in force, phases and every reason.

Each set is a StrEnum (for documentation, typing and validation at the edges) and its members are
also exported as plain module constants. Members *are* strings, so an event that carries
``"price_off_tick"`` compares equal to ``RejectReason.PRICE_OFF_TICK`` and serialises as itself.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BUY",
    "DAY",
    "FOK",
    "GTC",
    "IOC",
    "LIMIT",
    "MARKET",
    "NONE",
    "SELL",
    "STP_CANCEL_BOTH",
    "STP_CANCEL_NEWEST",
    "STP_CANCEL_OLDEST",
    "CancelReason",
    "OrderType",
    "Phase",
    "RejectReason",
    "SelfTradePrevention",
    "Side",
    "TimeInForce",
]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "GTC"  # good till cancelled
    DAY = "DAY"  # expires at the end of the trading day (Engine.expire_day_orders)
    IOC = "IOC"  # immediate or cancel: fill what you can now, cancel the rest
    FOK = "FOK"  # fill or kill: fill completely now, or not at all


class SelfTradePrevention(StrEnum):
    """What happens when an order would trade against a resting order of the same account."""

    CANCEL_NEWEST = "cancel_newest"  # the incoming order's remainder is cancelled (default)
    CANCEL_OLDEST = "cancel_oldest"  # the resting order is cancelled; the incoming one goes on
    CANCEL_BOTH = "cancel_both"  # both are cancelled


class Phase(StrEnum):
    AUCTION = "auction"  # call phase: orders are collected, nothing matches until the uncross
    CONTINUOUS = "continuous"
    HALTED = "halted"  # volatility halt: collecting for the reopening auction
    CLOSED = "closed"  # no new orders; cancels still work


class RejectReason(StrEnum):
    UNKNOWN_SYMBOL = "unknown_symbol"
    INVALID_SIDE = "invalid_side"
    INVALID_ORDER_TYPE = "invalid_order_type"
    INVALID_TIF = "invalid_time_in_force"
    INVALID_STP = "invalid_self_trade_prevention"
    INVALID_QUANTITY = "invalid_quantity"  # <= 0
    QUANTITY_OFF_LOT = "quantity_off_lot"  # not a whole number of lots
    QUANTITY_TOO_LARGE = "quantity_too_large"
    INVALID_PRICE = "invalid_price"  # <= 0
    PRICE_OFF_TICK = "price_off_tick"  # not a whole number of ticks
    MISSING_PRICE = "missing_price"  # limit order without a price
    PRICE_ON_MARKET = "price_on_market_order"
    PRICE_OUTSIDE_BAND = "price_outside_band"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    POST_ONLY_MARKET = "post_only_market_order"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    INVALID_CLIENT_ORDER_ID = "invalid_client_order_id"  # not hashable (a list, say)
    INVALID_ACCOUNT = "invalid_account"  # not hashable
    MARKET_CLOSED = "market_closed"
    TIF_NOT_IN_AUCTION = "tif_not_allowed_in_auction"  # IOC/FOK while orders are being collected
    UNKNOWN_ORDER = "unknown_order"  # no open order with that id
    SYMBOL_MISMATCH = "symbol_mismatch"  # a cancel/replace names another symbol than its order's
    REPLACE_BELOW_FILLED = "replace_qty_not_above_filled"
    REPLACE_CHANGES_NOTHING = "replace_changes_nothing"


class CancelReason(StrEnum):
    USER = "user"  # an explicit cancel request
    MASS_CANCEL = "mass_cancel"  # the kill switch
    IOC = "ioc_remainder"
    FOK = "fok_not_fillable"
    NO_LIQUIDITY = "market_no_liquidity"  # a market order's unfilled remainder
    SELF_TRADE = "self_trade_prevention"
    HALTED = "halted"  # an IOC/FOK/market remainder when its sweep tripped the breaker
    AUCTION_UNFILLED = "auction_unfilled"  # market/IOC remainder after an uncross
    PERIOD_END = "period_end"  # period-based call market: the book empties after each auction
    EXPIRED = "expired"  # DAY order at the end of the day
    CLOSED = "market_closed"


BUY = Side.BUY.value
SELL = Side.SELL.value
NONE = "none"  # the aggressor of an auction trade
LIMIT = OrderType.LIMIT.value
MARKET = OrderType.MARKET.value
GTC = TimeInForce.GTC.value
DAY = TimeInForce.DAY.value
IOC = TimeInForce.IOC.value
FOK = TimeInForce.FOK.value
STP_CANCEL_NEWEST = SelfTradePrevention.CANCEL_NEWEST.value
STP_CANCEL_OLDEST = SelfTradePrevention.CANCEL_OLDEST.value
STP_CANCEL_BOTH = SelfTradePrevention.CANCEL_BOTH.value
