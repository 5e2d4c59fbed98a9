"""RFC 9457 problem details: every error snodo returns has this shape.

Domain errors (app.core.problems, raised by services) are mapped here; HTTP-level
errors from Starlette and request validation are mapped to the same body. Nothing internal
(stack, SQL, exception text) ever reaches a client: a 500 carries only the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.context import request_id_var
from app.core.i18n import Language, negotiate_language, title_for
from app.core.problems import (
    PROBLEM_MEDIA_TYPE,
    PROBLEM_TYPE_BASE,
    Busy,
    FieldError,
    MalformedBody,
    ProblemError,
    ValidationFailed,
    field_errors_from_pydantic,
)

logger = logging.getLogger("snodo.errors")


def problem_response(
    request: Request | None,
    *,
    status: int,
    title: str,
    type_: str = "about:blank",
    detail: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    request_id = request_id_var.get()
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
    if request_id:
        body["request_id"] = request_id
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    body = _encodable(body)
    response_headers = dict(headers or {})
    if request_id:
        response_headers["X-Request-ID"] = request_id
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=response_headers)


def _encodable(value: Any) -> Any:
    """Problem bodies echo field names and values the client sent: keep them valid UTF-8."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    return value


def _language(request: Request) -> Language:
    return negotiate_language(request.headers.get("accept-language"))


async def _handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    language = _language(request)
    return problem_response(
        request,
        status=exc.status,
        title=exc.title(language),
        type_=PROBLEM_TYPE_BASE + exc.slug if exc.slug else "about:blank",
        detail=exc.detail_in(language),
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _handle_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    language = _language(request)
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        # Not UTF-8, numbers too long, nesting too deep: FastAPI gives up before validation.
        return await _handle_problem(request, MalformedBody("The body could not be parsed."))
    if detail == HTTPStatus(exc.status_code).phrase:
        detail = None  # Starlette's default detail repeats the title
    return problem_response(
        request,
        status=exc.status_code,
        title=title_for(exc.status_code, language),
        detail=detail,
        headers=exc.headers,
    )


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    language = _language(request)
    raw = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in raw):
        problem: ProblemError = MalformedBody(
            "Il JSON non è leggibile." if language == "it" else "The JSON could not be parsed.",
            errors=field_errors_from_pydantic([e for e in raw if e.get("type") == "json_invalid"], language),
        )
    else:
        problem = ValidationFailed(errors=field_errors_from_pydantic(raw, language))
    return await _handle_problem(request, problem)


def internal_error_response(request: Request) -> JSONResponse:
    """The only body a client sees for a bug: a title, a hint, the request id to quote."""
    language = _language(request)
    return problem_response(
        request,
        status=500,
        title=title_for(500, language),
        detail=(
            "Errore interno: indicate il request_id a chi gestisce il servizio."
            if language == "it"
            else "Internal error: quote the request_id to the service operators."
        ),
    )


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Backstop only: RequestContextMiddleware normally answers (and logs) first.
    logger.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return internal_error_response(request)


# The transaction was rolled back and the same request may well succeed when sent again.
TRANSIENT = frozenset(
    {
        "57014",  # query_canceled: statement_timeout (or a cancel request)
        "40P01",  # deadlock_detected: PostgreSQL chose this transaction to break a lock cycle
        "40001",  # serialization_failure
    }
)
# PostgreSQL is stopping, restarting or starting up: the request's connection is gone or none
# could be opened; nothing of the request was committed.
UNAVAILABLE = frozenset(
    {
        "57P01",  # admin_shutdown: pg_ctl stop -m fast terminated the backend
        "57P02",  # crash_shutdown: pg_ctl stop -m immediate
        "57P03",  # cannot_connect_now: the database system is starting up / shutting down
    }
)
# Each detail in English and Italian (ProblemError picks the client's language).
LOST_DETAIL = (
    "The connection to the database was lost before the request finished. Send it again.",
    "La connessione al database si è interrotta prima della fine della richiesta. Inviatela di nuovo.",
)
UNREACHABLE_DETAIL = (
    "The database cannot be reached now; nothing was changed. Send the request again.",
    "Il database non è raggiungibile ora; nulla è stato modificato. Inviate di nuovo la richiesta.",
)
BUSY_DETAIL = (
    "The database could not finish the request now; nothing was changed. Send it again.",
    "Il database non ha potuto completare la richiesta; nulla è stato modificato. Inviatela di nuovo.",
)
RETRY_AFTER_S = "5"


async def _handle_database(request: Request, exc: Exception) -> JSONResponse:
    """A statement that ran out of time or lost a deadlock, a pool with no free connection, a
    connection lost (PostgreSQL restarted, the backend terminated) or one that cannot be opened
    (PostgreSQL stopped, starting up or shutting down) is a 503 to retry; any other database
    error is a bug (500)."""
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(exc, "sqlstate", None)
    cause = getattr(orig, "__cause__", None)
    if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or isinstance(
        exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError
    ):
        logger.warning("database connection lost", extra={"path": request.url.path, "sqlstate": sqlstate})
        detail = LOST_DETAIL
    elif (
        (isinstance(exc, OSError) and _raised_by_the_driver(exc))
        or isinstance(cause, OSError | asyncpg.PostgresConnectionError)
        or sqlstate in UNAVAILABLE  # 57P03 is asyncpg's CannotConnectNowError
    ):
        logger.warning("database unavailable", extra={"path": request.url.path, "sqlstate": sqlstate})
        detail = UNREACHABLE_DETAIL
    elif isinstance(exc, PoolTimeout) or sqlstate in TRANSIENT:
        logger.warning("database busy", extra={"path": request.url.path, "sqlstate": sqlstate})
        detail = BUSY_DETAIL
    else:
        return await _handle_unexpected(request, exc)
    english, italian = detail
    busy = Busy(english, detail_it=italian, headers={"Retry-After": RETRY_AFTER_S})
    return await _handle_problem(request, busy)


def _raised_by_the_driver(exc: BaseException) -> bool:
    """An OSError from opening a database connection (asyncpg or SQLAlchemy's pool in its
    traceback), not one of ours: those stay 500s, bugs to see."""
    frame = exc.__traceback__
    while frame is not None:
        module = str(frame.tb_frame.f_globals.get("__name__", ""))
        if module.startswith(("asyncpg", "sqlalchemy")):
            return True
        frame = frame.tb_next
    return False


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _handle_problem)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(DBAPIError, _handle_database)
    app.add_exception_handler(PoolTimeout, _handle_database)
    # Raised as they are, not wrapped by SQLAlchemy, when a new connection cannot be opened:
    # refused or no socket (OSError), "the database system is starting up" (CannotConnectNowError).
    app.add_exception_handler(OSError, _handle_database)
    app.add_exception_handler(asyncpg.PostgresError, _handle_database)
    app.add_exception_handler(asyncpg.InterfaceError, _handle_database)
    app.add_exception_handler(Exception, _handle_unexpected)
