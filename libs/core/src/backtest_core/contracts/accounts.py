"""Users: the stored user document, its name and password rules (a token's claims: `contracts.auth`).

A user document in the `users` collection holds the name (its `_id`), the role (one of
`contracts.auth.ROLES`) and an argon2id hash of the password (argon2-cffi: the memory-hard hash the
Password Hashing Competition chose; its encoded form carries its own salt and cost parameters, so costs
can rise later without a schema change). argon2 is imported
only where a password is hashed or checked, and required by the packages that do (gateway, CLI), so the
sandbox image, which installs backtest_core, does not need it.
"""

from __future__ import annotations

import re
from typing import Any

from backtest_core.contracts.auth import ROLES

USERS = "users"
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024


class AccountError(ValueError):
    """A user name, role or password is not acceptable; the message says which and why."""


def check_user(name: str, role: str) -> None:
    """Raise AccountError unless `name` is a valid user name and `role` one of ROLES."""
    if not USER_NAME.match(name):
        raise AccountError(
            "user name must be 1-64 letters, digits or . _ @ - (starting with a letter or digit), "
            f"was {name!r}"
        )
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, was {role!r}")


def check_password(password: str) -> None:
    """Raise AccountError unless `password` has MIN_PASSWORD_CHARS to MAX_PASSWORD_CHARS characters."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise AccountError(
            f"password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters, was {len(password)}"
        )


def hash_password(password: str) -> str:
    """Return the encoded argon2id hash of `password` (salted, with its parameters)."""
    from argon2 import PasswordHasher

    check_password(password)
    return PasswordHasher().hash(password)


def verify_password(encoded: str, password: str) -> bool:
    """True if `password` matches the encoded argon2 hash `encoded`; False for any mismatch or bad hash."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return PasswordHasher().verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


def user_document(name: str, role: str, password: str) -> dict[str, Any]:
    """Return the `users` document of a new user (the password is stored only as its hash)."""
    check_user(name, role)
    return {"_id": name, "role": role, "password_hash": hash_password(password)}
