"""The errors the Invoke API answers, one class per error code (moto's ``exceptions.py`` shape).

Each class carries the HTTP status and the ``x-amzn-ErrorType`` that botocore
turns into ``client.exceptions.<Code>``; the body is Lambda's
``{"Type": "User" | "Service", "message": ...}`` plus any extra fields (a
throttle's ``Reason``). ``close`` says the request's body was not (fully)
read, so the connection cannot carry another request.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    """An error the Invoke API itself returns (not a function error).

    ``status`` is the class's own unless a site has a reason to differ (a
    service shutting down answers 503; a request aiohttp's parser refused keeps
    the status the parser chose).
    """

    default_status: ClassVar[int] = 400
    fault: ClassVar[str] = "User"  # the body's Type: the caller's fault or the service's

    def __init__(self, message: str, *, close: bool = False, status: int | None = None, **extra: str) -> None:
        super().__init__(message)
        self.message = message
        self.close = close
        self.status = status if status is not None else self.default_status
        self.extra = extra

    @property
    def error_type(self) -> str:
        """``x-amzn-ErrorType``: the class's name is the error code."""
        return type(self).__name__

    def body(self) -> dict[str, Any]:
        return {"Type": self.fault, "message": self.message, **self.extra}


class ValidationException(ApiError):
    pass


class InvalidParameterValueException(ApiError):
    pass


class InvalidRequestContentException(ApiError):
    pass


class AccessDeniedException(ApiError):
    default_status = 403


class ResourceNotFoundException(ApiError):
    default_status = 404


class UnknownOperationException(ApiError):
    default_status = 404


class RequestTimeoutException(ApiError):
    default_status = 408


class RequestEntityTooLargeException(ApiError):
    default_status = 413


class ExpectationFailed(ApiError):
    default_status = 417


class TooManyRequestsException(ApiError):
    default_status = 429


class ServiceException(ApiError):
    default_status = 500
    fault = "Service"


class HttpVersionNotSupportedException(ApiError):
    default_status = 505
