"""Secret redaction: credentials are replaced by ``[REDACTED:<kind>]`` before anything is stored or embedded.

The patterns are the shapes real credentials take (provider key prefixes, PEM blocks, JWTs, passwords in
URLs, ``password = ...`` assignments). They aim at few false positives: prose about passwords stays as it is.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    ("url-password", r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]+:(?P<secret>[^\s@/]+)@"),
    ("bearer-token", r"(?i)\b(?:bearer|token)\s+(?P<secret>[A-Za-z0-9._~+/\-]{20,}=*)"),
    (
        "password",
        r"(?i)\b(?:password|passwd|pwd|passphrase|secret|api[_\-]?key|access[_\-]?key|secret[_\-]?key"
        r"|access[_\-]?token|auth[_\-]?token|client[_\-]?secret|private[_\-]?key)\b[\"']?\s*[:=]\s*"
        r"[\"']?(?P<secret>[^\s\"',;]{4,})",
    ),
    # "my password is hunter2": only a value with a digit or symbol, so "the password is required" stays.
    (
        "password",
        r"(?i)\b(?:password|passphrase|pin)\s+(?:is|was)\s+[\"']?"
        r"(?P<secret>(?=[^\s\"']*[0-9!@#$%^&*_+=\-])[^\s\"',;]{4,}?)[\"']?(?=[\s,;.!?]*(?:\s|$))",
    ),
)


def _marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    kinds: tuple[str, ...]  # what was found, in order of first appearance, each once


class Redactor:
    """Finds and masks secrets in text and in the string values of JSON-like metadata."""

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
        return Redacted(value, tuple(found))

    def json(self, value: Any) -> tuple[Any, tuple[str, ...]]:
        """``value`` with every string in it redacted (dict keys are kept), and the kinds found."""
        found: dict[str, None] = {}

        def walk(v: Any) -> Any:
            if isinstance(v, str):
                r = self.text(v)
                found.update(dict.fromkeys(r.kinds))
                return r.text
            if isinstance(v, dict):
                return {k: walk(x) for k, x in v.items()}  # pyright: ignore[reportUnknownVariableType]
            if isinstance(v, list):
                return [walk(x) for x in v]  # pyright: ignore[reportUnknownVariableType]
            return v

        return walk(value), tuple(found)
