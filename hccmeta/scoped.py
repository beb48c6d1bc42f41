"""A module-level setting that a ``with`` block changes for the code it calls.

Used where a higher layer hands a lower one something for the duration of a call
without threading it through every signature: the result cache as the store of MCMC
fits (:func:`hccmeta.models.mcmc.fit_store`) and of parsed YAML files
(:func:`hccmeta.data.yamlio.parse_store`), and the memo of effect selections
(:func:`hccmeta.analyses.take.selection_memo`). The value is process-wide (every thread
sees it), and restored when the block ends, however it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Scoped"]


class Scoped[T]:
    """A value with a default, replaced within :meth:`using` blocks (which nest)."""

    def __init__(self, value: T) -> None:
        self._value = value

    def get(self) -> T:
        """The value now."""
        return self._value

    @contextmanager
    def using(self, value: T) -> Iterator[None]:
        """Within the block the value is ``value``; afterwards what it was before."""
        previous, self._value = self._value, value
        try:
            yield
        finally:
            self._value = previous
