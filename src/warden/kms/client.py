"""A client of the KMS protocol (`POST /prpc/KMS.<Method>` with JSON), for guests and KMS replicas."""

from __future__ import annotations

from typing import Any

import httpx

from warden.errors import OperationFailed


class KmsRefused(OperationFailed):
    """The KMS said no; the message is the KMS's own (e.g. `Boot denied: Device not allowed`)."""


class KmsClient:
    def __init__(self, url: str, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=timeout)

    def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.http.post(f"{self.url}/prpc/KMS.{method}", json=body)
        except httpx.HTTPError as exc:
            raise OperationFailed(f"KMS at {self.url} unreachable: {type(exc).__name__}") from None
        try:
            data = response.json()
        except ValueError:
            raise OperationFailed(f"KMS {method}: HTTP {response.status_code}, not JSON") from None
        if response.status_code != 200:
            raise KmsRefused(str(data.get("error") if isinstance(data, dict) else data))
        if not isinstance(data, dict):
            raise OperationFailed(f"KMS {method}: answer is not a JSON object")
        return data

    def close(self) -> None:
        self.http.close()
