"""One setting's value read from an environment variable or a connection's extra: required text,
a port, a yes or no. Every part's settings read them alike and name the setting when one is wrong."""

from __future__ import annotations

from collections.abc import Mapping

from archivist.errors import ConfigurationError

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set")
    return value


def port(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise ConfigurationError(f"{name} must be a port number, got {text!r}")
    return int(text)


def flag(value: object, name: str) -> bool:
    """A yes or no as JSON gives it (true) or a URI or a variable does ("true", "False", "1");
    `name` says where it came from. Anything else is refused rather than read as true."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {value!r}")
