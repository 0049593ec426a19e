"""A bundle encrypted with age (https://age-encryption.org/v1), streamed both ways.

The encrypted object holds exactly the bytes of the plain bundle, encrypted by pyrage (the Rust
age implementation) to one or more X25519 recipients; only an identity (private key) of one of
them opens it. Neither direction holds the bundle whole: the writer feeds pyrage's `encrypt_io`
through a bounded pipe on a thread of its own, and the reader does the same with `decrypt_io`.
age authenticates every 64 KiB chunk and the end of the stream, so a changed, cut or
re-ordered object fails to decrypt. See docs/FORMAT.md#encrypted-bundles.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Sequence
from typing import Any

import pyrage
from pyrage import x25519

from archivist.errors import ConfigurationError, VerificationError
from archivist.format import handoff
from archivist.format.finishing import FinishingWriter
from archivist.format.streams import Readable, Writable

MAGIC = b"age-encryption.org/v1\n"
# Chunks the pipes hold between the two threads: with the bundle writer's writes of up to a few
# MiB each, a few MiB in flight at most (docs/PERFORMANCE.md#encryption-cost).
PIPE_DEPTH = 8
_KEY = re.compile(r"\S+")


def parse_recipients(text: str | Sequence[str], where: str) -> list[x25519.Recipient]:
    """X25519 recipients (`age1...`) from a list, or text with one or more per line (age's
    recipients file: blank lines and `#` comments ignored); `where` names the setting."""
    keys = split_keys(text)
    if not keys:
        raise ConfigurationError(f"{where} names no age recipient: give one or more public keys age1...")
    recipients = []
    for key in keys:
        try:
            recipients.append(x25519.Recipient.from_str(key))
        except pyrage.RecipientError as exc:
            raise ConfigurationError(
                f"{where} holds {key[:12]!r}…, which is not an age X25519 public key ({exc}): "
                "make one with `age-keygen` and give its public key age1..."
            ) from None
    return recipients


def parse_identities(text: str, where: str) -> list[x25519.Identity]:
    """X25519 identities (`AGE-SECRET-KEY-1...`) from age's identity file format. The error never
    repeats the text: it is a secret."""
    keys = split_keys(text)
    if not keys:
        raise ConfigurationError(f"{where} holds no age identity: give a private key AGE-SECRET-KEY-1...")
    identities = []
    for number, key in enumerate(keys, 1):
        try:
            identities.append(x25519.Identity.from_str(key))
        except pyrage.IdentityError:
            raise ConfigurationError(
                f"{where}: its identity number {number} is not an age X25519 private key "
                "(AGE-SECRET-KEY-1..., as `age-keygen` writes it)"
            ) from None
    return identities


def split_keys(text: str | Sequence[str]) -> list[str]:
    """The keys in `text`: separated by spaces, commas or lines; `#` comment lines skipped."""
    lines = text.splitlines() if isinstance(text, str) else list(text)
    found: list[str] = []
    for line in lines:
        line = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        found += [k.strip(",") for k in _KEY.findall(line.replace(",", " ")) if k.strip(",")]
    return found


def is_encrypted(head: bytes) -> bool:
    """Whether a file's first bytes are an age header."""
    return head.startswith(MAGIC)


class _Pipe:
    """A bounded queue of byte chunks read as a file: what one thread writes, another reads."""

    def __init__(self) -> None:
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=PIPE_DEPTH)
        self._buf = memoryview(b"")
        self._ended = False
        self.cancelled = False

    # the writing side
    def put(self, data: bytes | None) -> None:
        try:
            handoff.put(self._chunks, data, lambda: self.cancelled)
        except handoff.Stopped:
            raise OSError("the other side of the pipe stopped") from None

    # the reading side
    def read(self, n: int = -1) -> bytes:
        while not self._buf and not self._ended:
            try:
                if self.cancelled:
                    raise handoff.Stopped()
                chunk = handoff.get(self._chunks, lambda: self.cancelled)
            except handoff.Stopped:
                raise OSError("the other side of the pipe stopped") from None
            if chunk is None:
                self._ended = True
            else:
                self._buf = memoryview(chunk)
        n = len(self._buf) if n is None or n < 0 else n
        data, self._buf = self._buf[:n], self._buf[n:]
        return bytes(data)

    def readable(self) -> bool:
        return True

    def cancel(self) -> None:
        """Stops both sides: a blocked put or read raises at once."""
        self.cancelled = True


class _PipeWriter:
    """The writing side of a _Pipe as the file pyrage writes to."""

    def __init__(self, pipe: _Pipe):
        self._pipe = pipe

    def write(self, data: bytes) -> int:
        if data:
            self._pipe.put(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing held here."""

    def writable(self) -> bool:
        return True


class _FileOut:
    """`out` as pyrage writes to it: its `write` must return the count. An error of `out` is kept,
    since pyrage hands back only its text."""

    def __init__(self, out: Writable):
        self._out = out
        self.error: Exception | None = None

    def write(self, data: bytes) -> int:
        try:
            self._out.write(data)
        except Exception as exc:
            self.error = exc
            raise
        return len(data)

    def flush(self) -> None:
        self._out.flush()

    def writable(self) -> bool:
        return True


class _Worker(threading.Thread):
    """Runs one pyrage call and keeps the exception it raised; when the call fails, `pipe` is
    cancelled so the other thread stops waiting on it, and when `ends` it is closed after success."""

    def __init__(self, name: str, pipe: _Pipe, ends: bool, call: Any, *args: Any):
        super().__init__(name=name, daemon=True)
        self._pipe, self._ends, self._call, self._args = pipe, ends, call, args
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._call(*self._args)
            if self._ends:
                self._pipe.put(None)
        except BaseException as exc:  # handed to the thread that reads or writes
            self.error = exc
            self._pipe.cancel()


class EncryptingWriter(FinishingWriter):
    """Writes what it is given into `out`, encrypted to `recipients`; `close` ends the age stream
    (its last chunk), `abort` stops without ending it. `out` is written from a thread of its own."""

    def __init__(self, out: Writable, recipients: Sequence[x25519.Recipient]):
        self._pipe = _Pipe()
        self._out = _FileOut(out)
        self._worker = _Worker(
            "age-encrypt", self._pipe, False, pyrage.encrypt_io, self._pipe, self._out, list(recipients)
        )
        self._worker.start()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._worker.error is not None or not self._worker.is_alive():
            raise self._failure()
        length = len(memoryview(data).cast("B"))
        if length:
            try:
                self._pipe.put(bytes(data))
            except OSError:
                raise self._failure() from None
        return length

    def flush(self) -> None:
        """Bytes leave as age's chunks fill."""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._pipe.put(None)
        except OSError:
            pass
        self._worker.join()
        if self._worker.error is not None:
            raise self._failure()

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._pipe.cancel()
        self._worker.join()

    def _failure(self) -> Exception:
        self._pipe.cancel()
        self._worker.join()
        if self._out.error is not None:
            return self._out.error  # the output's own error (the upload), as it was raised
        return OSError(f"encrypting the bundle failed: {self._worker.error}")


class DecryptingReader:
    """The plain bytes of the age stream `body`, decrypted as they are read with `identities`;
    `name` says in errors which bundle it is and `where` which setting holds the identity."""

    def __init__(self, body: Readable, identities: Sequence[x25519.Identity], name: str, where: str):
        self._body, self._name, self._where = body, name, where
        self._pipe = _Pipe()
        self._in = _BodyIn(body)
        self._worker = _Worker(
            "age-decrypt", self._pipe, True, pyrage.decrypt_io, self._in, _PipeWriter(self._pipe), list(identities)
        )
        self._worker.start()
        self._done = False

    def read(self, n: int = -1) -> bytes:
        if self._done:
            return b""
        try:
            data = self._pipe.read(n)
        except OSError:
            data = b""
        if data or n == 0:
            return data
        self._worker.join()
        self._done = True
        if self._worker.error is not None:
            raise self._explain(self._worker.error)
        return b""

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Stops decrypting (a reader may stop early, after meta.json) and gives the body back."""
        self._pipe.cancel()
        self._worker.join()
        getattr(self._body, "close", lambda: None)()

    def _explain(self, error: BaseException) -> Exception:
        text = str(error)
        if self._in.error is not None:
            return self._in.error  # the body's own error (the bucket), as it was raised
        if isinstance(error, pyrage.DecryptError) and "no matching keys" in text.lower():
            return VerificationError(
                f"{self._name} is encrypted to other keys than the identity in {self._where}: none of its "
                "recipients matches, so nothing was read and nothing was written; give the private key "
                "whose public key the backup was encrypted to"
            )
        return VerificationError(
            f"{self._name} cannot be decrypted: it is damaged, truncated or not an age file ({text})"
        )


class _BodyIn:
    """A body as the file pyrage reads from. An error of the body is kept, since pyrage hands back
    only its text."""

    def __init__(self, body: Readable):
        self._body = body
        self.error: Exception | None = None

    def read(self, n: int = -1) -> bytes:
        try:
            return self._body.read(n)
        except Exception as exc:
            self.error = exc
            raise

    def readable(self) -> bool:
        return True
