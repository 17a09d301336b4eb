"""Typed API errors, shared by the server (which renders them as `Status` objects) and
the client (which raises them from `Status` replies).

    ApiError
    ├── BadRequest (400)        ├── NotFound (404)       ├── Gone (410)
    ├── Unauthorized (401)      ├── MethodNotAllowed (405) ├── RequestEntityTooLarge (413)
    ├── Forbidden (403)         ├── AlreadyExists (409)  ├── UnsupportedMediaType (415)
    ├── Conflict (409)          ├── Invalid (422)        ├── TooManyRequests (429)
    ├── InternalError (500)     ├── ServiceUnavailable (503) └── Timeout (504)
"""

from __future__ import annotations

from typing import Any, ClassVar

from api.meta import Status, StatusCause, StatusDetails


class ApiError(Exception):
    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        causes: list[StatusCause] | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes or []
        self.retry_after_seconds = retry_after_seconds

    def to_status(self) -> Status:
        details = None
        if self.name or self.kind or self.causes or self.retry_after_seconds:
            details = StatusDetails(
                name=self.name,
                group=self.group,
                kind=self.kind,
                causes=self.causes or None,
                retry_after_seconds=self.retry_after_seconds,
            )
        return Status(status="Failure", message=self.message, reason=self.reason, code=self.code,
                      details=details)

    @staticmethod
    def from_status(status: dict[str, Any], http_code: int) -> ApiError:
        """The typed error a `Status` reply stands for (by reason, else by HTTP code)."""
        reason = status.get("reason") or ""
        code = int(status.get("code") or http_code)
        cls = _BY_REASON.get(reason) or _BY_CODE.get(code) or ApiError
        details = status.get("details") or {}
        causes = [StatusCause.model_validate(c) for c in details.get("causes") or []]
        err = cls(status.get("message") or f"HTTP {http_code}", name=details.get("name"),
                  group=details.get("group"), kind=details.get("kind"), causes=causes,
                  retry_after_seconds=details.get("retryAfterSeconds"))
        return err


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Unauthorized(ApiError):
    code = 401
    reason = "Unauthorized"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"


class Conflict(ApiError):
    code = 409
    reason = "Conflict"


class Gone(ApiError):
    code = 410
    reason = "Expired"


class RequestEntityTooLarge(ApiError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(ApiError):
    code = 422
    reason = "Invalid"


class TooManyRequests(ApiError):
    code = 429
    reason = "TooManyRequests"


class InternalError(ApiError):
    code = 500
    reason = "InternalError"


class ServiceUnavailable(ApiError):
    code = 503
    reason = "ServiceUnavailable"


class Timeout(ApiError):
    code = 504
    reason = "Timeout"


_ALL: tuple[type[ApiError], ...] = (
    BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, AlreadyExists, Conflict, Gone,
    RequestEntityTooLarge, UnsupportedMediaType, Invalid, TooManyRequests, InternalError,
    ServiceUnavailable, Timeout,
)
_BY_REASON: dict[str, type[ApiError]] = {c.reason: c for c in _ALL}
_BY_REASON["Gone"] = Gone
_BY_CODE: dict[int, type[ApiError]] = {}
for _cls in _ALL:
    _BY_CODE.setdefault(_cls.code, _cls)


def not_found(resource_group_plural: str, name: str, *, group: str = "", kind: str = "") -> NotFound:
    return NotFound(f'{resource_group_plural} "{name}" not found', name=name, group=group,
                    kind=kind or resource_group_plural.split(".")[0])


def already_exists(resource_group_plural: str, name: str, *, group: str = "") -> AlreadyExists:
    return AlreadyExists(f'{resource_group_plural} "{name}" already exists', name=name, group=group,
                         kind=resource_group_plural.split(".")[0])


def conflict(resource_group_plural: str, name: str, why: str, *, group: str = "") -> Conflict:
    return Conflict(
        f'Operation cannot be fulfilled on {resource_group_plural} "{name}": {why}',
        name=name, group=group, kind=resource_group_plural.split(".")[0],
    )
