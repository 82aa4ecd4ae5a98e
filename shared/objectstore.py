"""One small interface over an object store (`obstore`): put, get and delete bytes by key.

Two backends, chosen by settings: a folder of the local filesystem (`make run`: `.data/documents`), or
any S3-compatible store (AWS S3, MinIO, SeaweedFS, Garage, a cloud provider's object storage). Keys are
paths made of `[A-Za-z0-9._-]` segments joined by `/`.

Failures come out as three errors, so that callers (and `shared.bus.is_transient`) know what to do:
`ObjectNotFound` (no such key), `StoreUnavailable` (the store does not answer, or answers a server
error: a `ConnectionError`, transient, retry later) and `StoreRefused` (the store says no to these
credentials or this bucket: a configuration to fix, not something a retry changes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import (
    BaseError,
    InvalidPathError,
    NotSupportedError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from obstore.store import LocalStore, S3Store

if TYPE_CHECKING:
    from obstore.store import S3Config

_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
# A store that does not answer is noticed within seconds: the caller answers 503, the client retries.
_CONNECT_TIMEOUT = timedelta(seconds=3)
_REQUEST_TIMEOUT = timedelta(seconds=60)


class ObjectStoreError(Exception):
    """Something went wrong with the object store; see the subclasses."""


class ObjectNotFound(ObjectStoreError, LookupError):
    """No object under this key."""


class StoreUnavailable(ObjectStoreError, ConnectionError):
    """The store does not answer (or answers a server error): transient, nothing was done, retry later."""


class StoreRefused(ObjectStoreError):
    """The store refused these credentials or this bucket: its configuration needs a person."""


@dataclass(frozen=True)
class LocalFolder:
    """Objects as files under `directory` (created if missing)."""

    directory: Path


@dataclass(frozen=True)
class S3Bucket:
    """Objects in an S3 bucket. `endpoint` is the store's URL (None: AWS's, from the region); `path_style`
    addresses `endpoint/bucket/key` rather than `bucket.endpoint/key`, as most self-hosted stores want.
    Without keys, the usual AWS sources are used (environment, web identity, instance metadata)."""

    bucket: str
    region: str
    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    path_style: bool = True
    prefix: str | None = None

    def __repr__(self) -> str:  # never the secret, in a log or a traceback
        return f"S3Bucket(bucket={self.bucket!r}, endpoint={self.endpoint!r}, region={self.region!r})"


StoreConfig = LocalFolder | S3Bucket


class ObjectStore:
    """`put`, `get` and `delete` of bytes by key, on the backend `config` names."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self._opened: LocalStore | S3Store | None = None

    @property
    def _store(self) -> LocalStore | S3Store:
        """Opened at the first use: a local folder is created only once something is stored."""
        if self._opened is None:
            self._opened = _open(self.config)
        return self._opened

    @property
    def where(self) -> str:
        """Where the objects are, for people (no secret)."""
        if isinstance(self.config, LocalFolder):
            return f"folder {self.config.directory}"
        return f"S3 bucket {self.config.bucket} at {self.config.endpoint or self.config.region}"

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key` (replacing what was there)."""
        attributes = {"Content-Type": content_type} if isinstance(self.config, S3Bucket) else None
        try:
            store = self._store
            await obstore.put_async(store, _checked(key), data, attributes=attributes)
        except (BaseError, OSError) as exc:
            raise _translated(exc, key) from exc

    async def get(self, key: str) -> bytes:
        try:
            result = await obstore.get_async(self._store, _checked(key))
            return bytes(await result.bytes_async())
        except (BaseError, OSError) as exc:
            raise _translated(exc, key) from exc

    async def delete(self, key: str) -> None:
        """Remove the object under `key`; a key with no object is no error."""
        try:
            await obstore.delete_async(self._store, _checked(key))
        except FileNotFoundError:
            return
        except (BaseError, OSError) as exc:
            raise _translated(exc, key) from exc


def _open(config: StoreConfig) -> LocalStore | S3Store:
    if isinstance(config, LocalFolder):
        return LocalStore(prefix=config.directory, mkdir=True)
    s3: S3Config = {"region": config.region, "virtual_hosted_style_request": not config.path_style}
    if config.endpoint:
        s3["endpoint"] = config.endpoint
    if config.access_key_id and config.secret_access_key:
        s3["access_key_id"], s3["secret_access_key"] = config.access_key_id, config.secret_access_key
    return S3Store(
        config.bucket,
        prefix=config.prefix or None,
        config=s3,
        client_options={
            "allow_http": bool(config.endpoint and config.endpoint.startswith("http://")),
            "connect_timeout": _CONNECT_TIMEOUT,
            "timeout": _REQUEST_TIMEOUT,
        },
        retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=10)},
    )


def _checked(key: str) -> str:
    if not _KEY.fullmatch(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"not an object key: {key!r}")
    return key


def _translated(exc: BaseException, key: str) -> ObjectStoreError:
    """obstore's error as one of ours (the message keeps obstore's first line: it names the request)."""
    first_line = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
    if isinstance(exc, FileNotFoundError):
        return ObjectNotFound(f"no object {key}")
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError | NotSupportedError | InvalidPathError):
        return StoreRefused(first_line)
    if isinstance(exc, PermissionError | IsADirectoryError | NotADirectoryError):
        return StoreRefused(first_line)  # a local folder this process may not write
    return StoreUnavailable(first_line)
