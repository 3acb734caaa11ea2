"""Secret redaction: credentials are replaced by ``[REDACTED:<kind>]`` before anything is stored or embedded.

The patterns are the shapes real credentials take (provider key prefixes, PEM blocks, JWTs, passwords in
URLs) and values assigned to a secret's name in env, ini, TOML, YAML or JSON style (``AWS_SECRET_ACCESS_KEY=...``,
``db_password = "..."``, ``"api_key": "..."``). They aim at few false positives: prose about passwords stays as it
is. Log lines pass through it too (``RedactingFormatter``): an error may quote what a caller sent.
"""

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Redacted", "RedactingFormatter", "Redactor", "secret_name"]

# (kind, pattern): secrets replaced whole. Checked before the context patterns below.
_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "private-key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*)",
    ),
    ("aws-access-key", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}\b"),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("gitlab-token", r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    ("slack-webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]+"),
    ("stripe-key", r"\b[rsp]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("api-key", r"\bsk-(?:ant-|proj-|live-)?[A-Za-z0-9_\-]{20,}"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
)
# Secrets inside a larger match: the named group ``secret`` is replaced, the rest kept.
_CONTEXT_PATTERNS: tuple[tuple[str, str], ...] = (
    # The scheme starts only where no scheme character precedes: with \b, "-a--a-..." took quadratic time.
    ("url-password", r"(?<![a-zA-Z0-9+.\-])[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]+:(?P<secret>[^\s@/]+)@"),
    ("bearer-token", r"(?i)\b(?:bearer|token)\s+(?P<secret>[A-Za-z0-9._~+/\-]{20,}=*)"),
    # "my password is hunter2": only a value with a digit or symbol, so "the password is required" stays.
    (
        "password",
        r"(?i)\b(?:password|passphrase|pin)\s+(?:is|was)\s+[\"']?"
        r"(?P<secret>(?=[^\s\"']*[0-9!@#$%^&*_+=\-])[^\s\"',;]{4,}?)[\"']?(?=[\s,;.!?]*(?:\s|$))",
    ),
)


# NAME=value, name = "value", "name": "value", --name=value: the value is masked when ``secret_name`` says the
# name is a secret's. The name is matched whole (AWS_SECRET_ACCESS_KEY is one name), starting only where no name
# character precedes; the value is looked at only after a secret's name, so a value never hides an assignment
# inside it (``https://host/?api_key=...``) and the scan stays linear.
_ASSIGNMENT = re.compile(r"(?<![\w.\-])(?P<name>-{0,2}[A-Za-z_][\w.\-]*)[\"']?[ \t]*(?::=|=>|[:=])[ \t]*")
_VALUE = re.compile(r"[\"']?(?P<secret>(?<=\")[^\"\n]{1,256}(?=\")|(?<=')[^'\n]{1,256}(?=')|[^\s\"',;]{4,})")
# A secret's name, its words lower-cased and joined by "_" (``secret_name``): *PASSWORD*, *_PASS, *_SECRET*,
# *_TOKEN, *_API_KEY and its kin, *_CREDENTIALS. "secretary" or "primary_key" are not secrets' names.
_PASSWORD_NAME = re.compile(r"pass(?:word|wd|phrase)|(?:^|_)(?:pwd|pass)$")
_SECRET_NAME = re.compile(
    r"(?:^|_|client|app|api)secrets?(?:key|accesskey|token)?(?:_|$)|token$|(?:^|_)credentials?$"
    r"|(?:^|_)(?:api|access|private|secret|auth|signing|encryption|master)_?key$"
)
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")  # camelCase and ALL_CAPS alike


def secret_name(name: str) -> str | None:
    """The kind of secret a variable or key called ``name`` holds ("password" or "secret"), or None."""
    words = "_".join(w.lower() for w in _NAME_WORDS.findall(name))
    if _PASSWORD_NAME.search(words):
        return "password"
    return "secret" if _SECRET_NAME.search(words) else None


def _marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    kinds: tuple[str, ...]  # what was found, in order of first appearance, each once


class Redactor:
    """Finds and masks secrets in text and in JSON-like metadata (its keys, its strings, values under secret keys)."""

    def __init__(self, enabled: bool = True, extra_patterns: Sequence[str] = ()) -> None:
        self._enabled = enabled
        self._whole = [(kind, re.compile(p, re.DOTALL)) for kind, p in _PATTERNS]
        self._whole += [("custom", re.compile(p)) for p in extra_patterns]
        self._context = [(kind, re.compile(p)) for kind, p in _CONTEXT_PATTERNS]

    def text(self, value: str) -> Redacted:
        if not self._enabled:
            return Redacted(value, ())
        found: dict[str, None] = {}
        for kind, pattern in self._whole:
            value, n = pattern.subn(_marker(kind), value)
            if n:
                found[kind] = None
        for kind, pattern in self._context:

            def mask(m: re.Match[str], kind: str = kind) -> str:
                if m.group("secret").startswith("[REDACTED:"):
                    return m.group(0)
                found[kind] = None
                start, end = m.span("secret")
                whole = m.group(0)
                return whole[: start - m.start()] + _marker(kind) + whole[end - m.start() :]

            value = pattern.sub(mask, value)
        return Redacted(_assignments(value, found), tuple(found))

    def json(self, value: Any) -> tuple[Any, tuple[str, ...]]:
        """``value`` with every string in it redacted, keys included, and every string under a key that names a
        secret (``{"db_password": "..."}``) masked whole; and the kinds found."""
        found: dict[str, None] = {}

        def text(v: str) -> str:
            r = self.text(v)
            found.update(dict.fromkeys(r.kinds))
            return r.text

        def walk(v: Any) -> Any:
            if isinstance(v, str):
                return text(v)
            if isinstance(v, dict):
                out: dict[str, Any] = {}
                for k, x in v.items():  # pyright: ignore[reportUnknownVariableType]
                    kind = secret_name(str(k)) if self._enabled else None  # pyright: ignore[reportUnknownArgumentType]
                    if kind and isinstance(x, str) and x and not x.startswith("[REDACTED:"):
                        found[kind] = None
                        clean = _marker(kind)
                    else:
                        clean = walk(x)
                    out[_unique(text(str(k)), out)] = clean  # pyright: ignore[reportUnknownArgumentType]
                return out
            if isinstance(v, list):
                return [walk(x) for x in v]  # pyright: ignore[reportUnknownVariableType]
            return v

        return walk(value), tuple(found)


def _assignments(text: str, found: dict[str, None]) -> str:
    """``text`` with the values assigned to secrets' names masked (their kinds added to ``found``)."""
    out: list[str] = []
    done = 0  # text before this is in ``out``
    for m in _ASSIGNMENT.finditer(text):
        if m.start() < done:  # inside a value masked already
            continue
        kind = secret_name(m.group("name"))
        value = _VALUE.match(text, m.end()) if kind else None
        if kind is None or value is None or value.group("secret").startswith("[REDACTED:"):
            continue
        found[kind] = None
        out += [text[done : value.start("secret")], _marker(kind)]
        done = value.end("secret")
    return "".join(out) + text[done:] if out else text


def _unique(key: str, taken: Mapping[str, Any]) -> str:
    """``key``, numbered when two keys became the same marker, so neither value is lost."""
    n, candidate = 1, key
    while candidate in taken:
        n += 1
        candidate = f"{key} {n}"
    return candidate


class RedactingFormatter(logging.Formatter):
    """Log lines with secrets masked, tracebacks included: a record may quote what a caller sent (an error's
    text, a resource's URI), and the log is read by people who should not see it."""

    def __init__(self, redactor: Redactor, fmt: str) -> None:
        super().__init__(fmt)
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self._redactor.text(super().format(record)).text
