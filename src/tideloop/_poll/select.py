"""The portable backend: the best ``selectors`` selector of the platform (kqueue, poll, select)."""

from __future__ import annotations

import selectors

from .constants import READ, WRITE

_EVENT_READ = selectors.EVENT_READ
_EVENT_WRITE = selectors.EVENT_WRITE


def _to_selector_mask(events: int) -> int:
    mask = 0
    if events & READ:
        mask |= _EVENT_READ
    if events & WRITE:
        mask |= _EVENT_WRITE
    return mask


class SelectorsPoller:
    """Readiness through ``selectors.DefaultSelector``; the same contract as EpollPoller."""

    __slots__ = ("_selector",)

    #: Its key in tideloop._poll.POLLERS (TIDELOOP_POLLER=select), shown by the loop's repr.
    name = "select"

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self._selector = selector if selector is not None else selectors.DefaultSelector()

    def fileno(self) -> int:
        return self._selector.fileno() if hasattr(self._selector, "fileno") else -1

    def register(self, fd: int, events: int) -> None:
        try:
            self._selector.register(fd, _to_selector_mask(events))
        except KeyError:
            self._selector.modify(fd, _to_selector_mask(events))

    def modify(self, fd: int, events: int) -> None:
        try:
            self._selector.modify(fd, _to_selector_mask(events))
        except KeyError:
            self._selector.register(fd, _to_selector_mask(events))

    def unregister(self, fd: int) -> None:
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass

    def poll(self, timeout: float | None) -> list:
        result = []
        for key, ev in self._selector.select(timeout):
            mask = 0
            if ev & _EVENT_READ:
                mask |= READ
            if ev & _EVENT_WRITE:
                mask |= WRITE
            result.append((key.fd, mask))
        return result

    def close(self) -> None:
        self._selector.close()
