"""A strict reader of ``text/event-stream`` (WHATWG HTML, server-sent events), as
``GET /v1/events`` speaks it: ``field: value`` lines, a blank line ends an event, ``:`` starts
a comment. A line or an event's data longer than ``MAXIMUM_BYTES`` ends the stream, so a
hostile server cannot make its reader hold unbounded memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Union

__all__ = ["Comment", "Event", "EventStreamParser", "Oversized", "MAXIMUM_BYTES"]

MAXIMUM_BYTES = 4 << 20


@dataclass(frozen=True)
class Comment:
    """A comment line: the server's heartbeat."""


@dataclass(frozen=True)
class Event:
    type: str
    id: Optional[str]
    data: str


@dataclass(frozen=True)
class Oversized:
    """A line or an event passed ``MAXIMUM_BYTES``: the stream cannot be trusted further."""


Message = Union[Comment, Event, Oversized]


class EventStreamParser:
    def __init__(self) -> None:
        self._line = bytearray()
        self._type = ""
        self._id: Optional[str] = None
        self._data: List[str] = []
        self._data_bytes = 0
        self._over = False

    def feed(self, chunk: bytes) -> List[Message]:
        """Takes the next bytes of the stream and returns the messages they complete."""
        messages: List[Message] = []
        if self._over:
            return messages
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                self._line += chunk[start:]
                if len(self._line) > MAXIMUM_BYTES:
                    self._over = True
                    messages.append(Oversized())
                return messages
            self._line += chunk[start:end]
            start = end + 1
            if len(self._line) > MAXIMUM_BYTES:
                self._over = True
                messages.append(Oversized())
                return messages
            line = bytes(self._line)
            self._line.clear()
            if line.endswith(b"\r"):
                line = line[:-1]
            message = self._line_complete(line)
            if message is not None:
                messages.append(message)
                if isinstance(message, Oversized):
                    self._over = True
                    return messages

    def _line_complete(self, line: bytes) -> Optional[Message]:
        if not line:
            message: Optional[Message] = None
            if self._data:
                message = Event(self._type or "message", self._id, "\n".join(self._data))
            self._type, self._id, self._data, self._data_bytes = "", None, [], 0
            return message
        if line.startswith(b":"):
            return Comment()
        field, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        text = value.decode("utf-8", "replace")
        name = field.decode("utf-8", "replace")
        if name == "event":
            self._type = text
        elif name == "id":
            self._id = text
        elif name == "data":
            self._data_bytes += len(value)
            if self._data_bytes > MAXIMUM_BYTES:
                return Oversized()
            self._data.append(text)
        return None
