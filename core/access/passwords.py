"""Password hashes, with the standard library only, in the format werkzeug.security writes.

A stored hash is ``method$salt$hex``: ``scrypt:N:r:p$salt$hex`` (what we write: N=32768, r=8, p=1,
a 16-character salt, as werkzeug's `generate_password_hash` does by default) or
``pbkdf2:hash_name:iterations$salt$hex`` (older rows). The salt is used as its UTF-8 bytes, not
decoded, and the digest is lower-case hex — so every hash written before this module (by werkzeug)
still verifies, and werkzeug would verify ours. Anything else does not verify (never an error: a
sign-in with a damaged row is a wrong password, not a 500).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import string

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1
SALT_LENGTH = 16
_SALT_ALPHABET = string.ascii_letters + string.digits
_PBKDF2_DEFAULT_ITERATIONS = 1_000_000  # werkzeug's default when a pbkdf2 method names no count


def hash_password(password: str) -> str:
    """A new salted scrypt hash of `password`."""
    salt = "".join(secrets.choice(_SALT_ALPHABET) for _ in range(SALT_LENGTH))
    method = f"scrypt:{SCRYPT_N}:{SCRYPT_R}:{SCRYPT_P}"
    return f"{method}${salt}${_digest(method, salt, password)}"


def verify_password(stored: str, password: str) -> bool:
    """Whether `password` is the one `stored` was made from (compared in constant time)."""
    method, sep, rest = (stored or "").partition("$")
    salt, sep2, expected = rest.partition("$")
    if not sep or not sep2:
        return False
    try:
        actual = _digest(method, salt, password or "")
    except (ValueError, TypeError, OverflowError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def _digest(method: str, salt: str, password: str) -> str:
    """The hex digest of `password` under `method` (its name and parameters, as stored)."""
    name, *args = method.split(":")
    if name == "scrypt":
        n, r, p = (int(a) for a in args) if args else (SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p).hex()
    if name == "pbkdf2" and len(args) <= 2:
        hash_name = args[0] if args else "sha256"
        iterations = int(args[1]) if len(args) == 2 else _PBKDF2_DEFAULT_ITERATIONS
        return hashlib.pbkdf2_hmac(hash_name, password.encode(), salt.encode(), iterations).hex()
    raise ValueError(f"unknown password hash method {name!r}")
