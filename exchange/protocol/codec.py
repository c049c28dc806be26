"""msgpack codec for wire messages: one message (or one batch) per frame.

`decode` faces the network, so it treats every byte as hostile. It checks the size before
unpacking, unpacks with tight limits, and refuses anything that is not exactly one well-formed
message of this protocol version. Whatever the input, it raises nothing but a `ProtocolError`
subclass, whose `reason` is a stable code the gateway can send back in a `ProtocolReject`
(see `ProtocolError.to_reject`). A process that catches `ProtocolError` around `decode` cannot
be crashed by its input.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Final, cast

import msgpack
from pydantic import BaseModel, ValidationError

from exchange.protocol.messages import MESSAGE_TYPES, PROTOCOL_VERSION, Message, ProtocolReject

__all__ = [
    "MAX_BATCH_COUNT",
    "MAX_MESSAGE_SIZE",
    "InvalidMessage",
    "MalformedMessage",
    "MessageTooLarge",
    "ProtocolError",
    "UnknownMessageType",
    "UnsupportedVersion",
    "decode",
    "decode_batch",
    "encode",
    "encode_batch",
]

MAX_MESSAGE_SIZE: Final = 64 * 1024  # bytes per frame
MAX_BATCH_COUNT: Final = 1024  # messages per batch frame

# Unpacking limits, far above anything a valid message needs and far below anything that hurts:
_MAX_STR_BYTES: Final = 4096  # the longest string field is 1024 characters (<= 4 bytes each)
_MAX_MAP_LEN: Final = 64  # the largest model has about 25 fields
_MAX_SUMMARY_ERRORS: Final = 5
_MAX_LOC_CHARS: Final = 40  # field names in error texts come from the sender: keep them short


class ProtocolError(ValueError):
    """Input that is not a valid message. `reason` is a stable code for the reject.

    `ref_type` is the offending message's type tag when it could be read, so a reject can say
    which message it answers.
    """

    reason: ClassVar[str] = "protocol_error"

    def __init__(self, text: str, *, ref_type: str | None = None) -> None:
        super().__init__(text)
        self.ref_type = ref_type[:64] if ref_type is not None else None

    def to_reject(self, ts: int = 0) -> ProtocolReject:
        """The session-level reject that answers this error."""
        return ProtocolReject(
            reason=self.reason, text=str(self)[:1024], ref_type=self.ref_type, ts=ts
        )


class MessageTooLarge(ProtocolError):
    """The frame (or batch) is over the size or count limit; it was not unpacked."""

    reason: ClassVar[str] = "message_too_large"


class MalformedMessage(ProtocolError):
    """Not a msgpack map with string keys and a string `type` (or trailing bytes, bombs...)."""

    reason: ClassVar[str] = "malformed"


class UnknownMessageType(ProtocolError):
    """A well-formed map whose `type` names no message of this protocol."""

    reason: ClassVar[str] = "unknown_type"


class UnsupportedVersion(ProtocolError):
    """`v` is missing or is not this process's PROTOCOL_VERSION."""

    reason: ClassVar[str] = "unsupported_version"


class InvalidMessage(ProtocolError):
    """A known message whose fields fail validation; the text says which fields and why."""

    reason: ClassVar[str] = "invalid_message"


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def encode(msg: BaseModel, *, max_size: int = MAX_MESSAGE_SIZE) -> bytes:
    """Serialise one message.

    Raises TypeError for a model that is not a wire message, and `MessageTooLarge` if the result
    exceeds `max_size`: a frame the receiver would refuse is the sender's bug, best caught here.
    """
    data = msgpack.packb(_dump(msg), use_bin_type=True)
    _check_size(data, max_size)
    return data


def encode_batch(
    msgs: Iterable[BaseModel],
    *,
    max_size: int = MAX_MESSAGE_SIZE,
    max_count: int = MAX_BATCH_COUNT,
) -> bytes:
    """Serialise several messages into one frame (a msgpack array of maps)."""
    dumped = [_dump(msg) for msg in msgs]
    if len(dumped) > max_count:
        raise MessageTooLarge(f"batch of {len(dumped)} messages exceeds the limit of {max_count}")
    data = msgpack.packb(dumped, use_bin_type=True)
    _check_size(data, max_size)
    return data


_WIRE_MODELS: Final = frozenset(MESSAGE_TYPES.values())


def _dump(msg: BaseModel) -> dict[str, Any]:
    if type(msg) not in _WIRE_MODELS:
        raise TypeError(f"not a wire message: {type(msg).__name__}")
    return msg.model_dump()


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def decode(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> Message:
    """Parse and validate one message. Raises only `ProtocolError` subclasses."""
    return _validate(_unpack(data, max_size))


def decode_batch(
    data: bytes,
    *,
    max_size: int = MAX_MESSAGE_SIZE,
    max_count: int = MAX_BATCH_COUNT,
) -> list[Message]:
    """Parse a batch frame; one bad message rejects the whole frame (all or nothing)."""
    obj = _unpack(data, max_size)
    if not isinstance(obj, list):
        raise MalformedMessage(f"a batch must be an array, not {_kind(obj)}")
    if len(obj) > max_count:
        raise MessageTooLarge(f"batch of {len(obj)} messages exceeds the limit of {max_count}")
    messages = []
    for index, item in enumerate(obj):
        try:
            messages.append(_validate(item))
        except ProtocolError as exc:
            raise type(exc)(f"message {index}: {exc}", ref_type=exc.ref_type) from None
    return messages


class _BadMap(ValueError):
    """Raised from inside the unpacker for maps msgpack itself would accept."""


def _strict_map(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    # A duplicate key would silently keep its last value: which one the sender "meant" is
    # ambiguous, and ambiguity on the wire is how two processes end up disagreeing.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if type(key) is not str:
            raise _BadMap("map keys must be strings")
        if key in result:
            raise _BadMap(f"duplicate key {key[:_MAX_LOC_CHARS]!r}")
        result[key] = value
    return result


def _refuse_ext(code: int, data: bytes) -> Any:
    raise _BadMap("msgpack extension types are not allowed")


def _unpack(data: Any, max_size: int) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessage(f"expected bytes, not {_kind(data)}")
    size = memoryview(data).nbytes
    if size > max_size:
        raise MessageTooLarge(f"{size} bytes exceeds the limit of {max_size}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            object_pairs_hook=_strict_map,
            ext_hook=_refuse_ext,
            max_str_len=_MAX_STR_BYTES,
            max_bin_len=_MAX_STR_BYTES,  # no field is bytes, but let validation say which
            max_ext_len=0,
            max_map_len=_MAX_MAP_LEN,
            max_array_len=max_size,  # snapshot levels; bounded by the frame size anyway
        )
    except (
        msgpack.UnpackException,  # includes ExtraData (trailing bytes) and StackError (depth)
        ValueError,  # truncated data, invalid UTF-8, limits exceeded, _BadMap
        TypeError,
        RecursionError,
        OverflowError,
    ) as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise MalformedMessage(f"not a valid msgpack frame ({detail})") from None


def _validate(obj: Any) -> Message:
    if not isinstance(obj, dict):
        raise MalformedMessage(f"a message must be a map, not {_kind(obj)}")
    if "type" not in obj:
        raise MalformedMessage("missing 'type'")
    tag = obj["type"]
    if not isinstance(tag, str):
        raise MalformedMessage(f"'type' must be a string, not {_kind(tag)}")
    model = MESSAGE_TYPES.get(tag)
    if model is None:
        raise UnknownMessageType(f"unknown message type {tag[:64]!r}", ref_type=tag)
    version = obj.get("v")
    # `type() is int`, not isinstance: True == 1, but a bool is not a version number.
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise UnsupportedVersion(
            f"protocol version {version!r:.20} is not supported (expected {PROTOCOL_VERSION})",
            ref_type=tag,
        )
    try:
        return cast("Message", model.model_validate(obj))
    except ValidationError as exc:
        raise InvalidMessage(f"invalid {tag}: {_summarize(exc)}", ref_type=tag) from None


def _summarize(exc: ValidationError) -> str:
    """``"qty: Input should be a valid integer; side: ..."`` without echoing the input values."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    parts = []
    for error in errors[:_MAX_SUMMARY_ERRORS]:
        loc = ".".join(str(part)[:_MAX_LOC_CHARS] for part in error["loc"]) or "message"
        parts.append(f"{loc}: {error['msg']}")
    if len(errors) > _MAX_SUMMARY_ERRORS:
        parts.append(f"and {len(errors) - _MAX_SUMMARY_ERRORS} more")
    return "; ".join(parts)


def _check_size(data: bytes, max_size: int) -> None:
    if len(data) > max_size:
        raise MessageTooLarge(f"encoded size {len(data)} bytes exceeds the limit of {max_size}")


def _kind(obj: Any) -> str:
    return type(obj).__name__
