"""Loading signing keys for services: never from the command line, never into a log.

A key comes from a file: either an encrypted eth-account keystore (the format of
``ape accounts import``, stored at ``$APE_DATA_FOLDER/accounts/<alias>.json``) whose password
is read from a file or from a named environment variable, or a raw hex private key file
(mode 0600 recommended; for local development). Errors are :class:`KeyLoadError` and never
contain the key or the password.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from oracle.exceptions import KeyLoadError

__all__ = ["ape_account_path", "load_account"]


def ape_account_path(alias: str, data_folder: str | Path | None = None) -> Path:
    """Where Ape keeps the keystore of account ``alias``."""
    root = Path(data_folder or os.environ.get("APE_DATA_FOLDER") or Path.home() / ".ape")
    return root / "accounts" / f"{alias}.json"


def _password(password_file: Path | None, password_env: str | None) -> str:
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise KeyLoadError(
                f"cannot read password file {password_file}: {exc.strerror}"
            ) from None
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise KeyLoadError(f"environment variable {password_env} is not set")
        return value
    raise KeyLoadError("an encrypted keyfile needs --password-file or --password-env")


def load_account(
    keyfile: Path, *, password_file: Path | None = None, password_env: str | None = None
) -> LocalAccount:
    """The account in ``keyfile`` (keystore JSON or raw hex key)."""
    try:
        text = Path(keyfile).read_text().strip()
    except OSError as exc:
        raise KeyLoadError(f"cannot read keyfile {keyfile}: {exc.strerror}") from None
    if text.startswith("{"):
        try:
            keystore = json.loads(text)
        except json.JSONDecodeError:
            raise KeyLoadError(f"keyfile {keyfile} is not valid JSON") from None
        password = _password(password_file, password_env)
        try:
            key = Account.decrypt(keystore, password)
        except (ValueError, KeyError, TypeError):
            raise KeyLoadError(f"cannot decrypt keyfile {keyfile} (wrong password?)") from None
        account: LocalAccount = Account.from_key(key)
        return account
    try:
        account = Account.from_key(text)
    except (ValueError, TypeError, AttributeError):
        raise KeyLoadError(f"keyfile {keyfile} holds neither a keystore nor a hex key") from None
    return account
