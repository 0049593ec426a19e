"""age encryption of a bundle's bytes, streamed both ways, and the keys read from settings."""

from __future__ import annotations

import io
import os
import threading

import pyrage
import pytest
from pyrage import x25519

from archivist.errors import ConfigurationError, VerificationError
from archivist.format import encryption


class _Sink(io.BytesIO):
    """A writable that records which threads wrote to it."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def write(self, data) -> int:  # type: ignore[override]
        self.threads.add(threading.current_thread().name)
        return super().write(data)


def _encrypt(data: bytes, recipients: list[x25519.Recipient], write_size: int = 100_000) -> bytes:
    sink = _Sink()
    with encryption.EncryptingWriter(sink, recipients) as out:
        for i in range(0, len(data), write_size):
            out.write(data[i : i + write_size])
    return sink.getvalue()


def _decrypt(blob: bytes, identities: list[x25519.Identity], read_size: int = 70_000) -> bytes:
    reader = encryption.DecryptingReader(io.BytesIO(blob), identities, "bundle object 'b.tgz.age'", "connection 'x'")
    try:
        parts = []
        while chunk := reader.read(read_size):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        reader.close()


def test_round_trip_streams_through_age_to_every_recipient() -> None:
    alice, bob = x25519.Identity.generate(), x25519.Identity.generate()
    data = os.urandom(1_000_003)
    blob = _encrypt(data, [alice.to_public(), bob.to_public()])
    assert encryption.is_encrypted(blob)
    assert data[:4096] not in blob
    assert _decrypt(blob, [alice]) == data
    assert _decrypt(blob, [bob]) == data
    assert pyrage.decrypt(blob, [bob]) == data  # what the age tool reads, byte for byte


def test_empty_input_is_still_one_age_file() -> None:
    alice = x25519.Identity.generate()
    blob = _encrypt(b"", [alice.to_public()])
    assert _decrypt(blob, [alice]) == b""


def test_wrong_identity_is_refused_naming_the_setting_before_any_byte() -> None:
    blob = _encrypt(b"secret rows" * 1000, [x25519.Identity.generate().to_public()])
    with pytest.raises(VerificationError, match=r"other keys than the identity in connection 'x'.*nothing was written"):
        _decrypt(blob, [x25519.Identity.generate()])


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_damaged_ciphertext_fails_as_verification_error(damage: str) -> None:
    alice = x25519.Identity.generate()
    blob = bytearray(_encrypt(os.urandom(300_000), [alice.to_public()]))
    if damage == "cut":
        blob = blob[: len(blob) - 1000]
    else:
        blob[len(blob) // 2] ^= 1
    with pytest.raises(VerificationError, match="cannot be decrypted: it is damaged, truncated"):
        _decrypt(bytes(blob), [alice])


def test_reader_closed_early_stops_the_decrypting_thread() -> None:
    alice = x25519.Identity.generate()
    blob = _encrypt(os.urandom(3_000_000), [alice.to_public()])
    before = threading.active_count()
    reader = encryption.DecryptingReader(io.BytesIO(blob), [alice], "b", "w")
    assert len(reader.read(1000)) == 1000
    reader.close()
    assert threading.active_count() == before


def test_writer_error_aborts_and_reports_the_outputs_own_error() -> None:
    class Broken:
        def write(self, data: bytes) -> int:
            raise ConnectionError("the bucket went away")

        def flush(self) -> None:
            pass

    writer = encryption.EncryptingWriter(Broken(), [x25519.Identity.generate().to_public()])
    with pytest.raises(ConnectionError, match="the bucket went away"):
        for _ in range(100):  # age writes its header at once; the error surfaces at a next write
            writer.write(os.urandom(1 << 20))
        writer.close()


def test_abort_ends_without_the_last_chunk_so_nothing_decrypts() -> None:
    alice = x25519.Identity.generate()
    sink = _Sink()
    writer = encryption.EncryptingWriter(sink, [alice.to_public()])
    writer.write(os.urandom(200_000))
    writer.abort()
    with pytest.raises(VerificationError):
        _decrypt(sink.getvalue(), [alice])


def test_recipients_parse_lists_and_recipient_files() -> None:
    a, b = (x25519.Identity.generate().to_public() for _ in range(2))
    text = f"# made with age-keygen\n{a}\n\n{b}, \n"
    assert [str(r) for r in encryption.parse_recipients(text, "w")] == [str(a), str(b)]
    assert len(encryption.parse_recipients([str(a)], "w")) == 1


def test_bad_recipient_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"connection 'archivist_encryption' holds 'age1nope'.*age-keygen"):
        encryption.parse_recipients("age1nope", "connection 'archivist_encryption'")
    with pytest.raises(ConfigurationError, match="names no age recipient"):
        encryption.parse_recipients("  # nothing\n", "ENCRYPTION_RECIPIENTS")


def test_bad_identity_error_never_repeats_the_secret() -> None:
    secret = "AGE-SECRET-KEY-1NOTAREALKEYBUTSTILLSECRET"
    with pytest.raises(ConfigurationError) as caught:
        encryption.parse_identities(f"# created: today\n{secret}\n", "ENCRYPTION_IDENTITY")
    assert secret not in str(caught.value) and "NOTAREAL" not in str(caught.value)
    assert "identity number 1" in str(caught.value)
    alice = x25519.Identity.generate()
    assert len(encryption.parse_identities(f"# created\n# public key: {alice.to_public()}\n{alice}\n", "w")) == 1
