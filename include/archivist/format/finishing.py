"""Writers that finish on a clean exit from their block and abort on an error."""

from __future__ import annotations

from typing import Any, Self


class FinishingWriter:
    """Mixed into a writer with `close` (finish the output) and `abort` (drop it): as a context
    manager, an error inside the block never leaves a finished-looking output behind."""

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
