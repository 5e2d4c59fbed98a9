"""Domain errors and the problem-details schema. No web framework here: services raise these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from app.core.i18n import Language, field_message, title_for

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://snodo.it/problems/"


class FieldError(BaseModel):
    """One wrong field: where it is, what is wrong, a stable machine code."""

    field: str = Field(description="Dotted path of the field at fault, e.g. `body.person.fiscal_code`.")
    message: str
    code: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": True})

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Base of every error that becomes a problem response. Subclass per domain error."""

    status: ClassVar[int] = 400
    slug: ClassVar[str | None] = None  # None → about:blank with the HTTP title
    title_en: ClassVar[str | None] = None
    title_it: ClassVar[str | None] = None
    # Most errors roll the request's transaction back; a few (failed logins, rejected tokens)
    # must keep what they wrote, because what they wrote is the record of the failure.
    keeps_writes: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        detail_it: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title_en or "")
        self.detail = detail
        self.detail_it = detail_it
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def detail_in(self, language: Language) -> str | None:
        """The detail in the client's language (Italian where the raiser gave it)."""
        return self.detail_it if language == "it" and self.detail_it else self.detail

    def title(self, language: Language) -> str:
        if language == "it" and self.title_it:
            return self.title_it
        if self.title_en:
            return self.title_en
        return title_for(self.status, language)


class MalformedBody(ProblemError):
    status = 400
    slug = "malformed-body"
    title_en = "The request body is not valid JSON"
    title_it = "Il corpo della richiesta non è un JSON valido"


class ValidationFailed(ProblemError):
    status = 422
    slug = "validation-error"
    title_en = "Some fields are not valid"
    title_it = "Alcuni campi non sono validi"


class ServiceUnavailable(ProblemError):
    status = 503
    slug = "not-ready"
    title_en = "The service is not ready"
    title_it = "Il servizio non è pronto"


class Busy(ProblemError):
    """The database gave up on a statement (statement_timeout) or no connection was free in time:
    nothing was written, and the same request may well succeed in a moment."""

    status = 503
    slug = "busy"
    title_en = "The service is busy: try again shortly"
    title_it = "Il servizio è occupato: riprovate tra poco"


class NotAuthenticated(ProblemError):
    """401: no credentials, or credentials that are not (or no longer) valid."""

    status = 401
    slug = "unauthenticated"
    title_en = "Authentication required"
    title_it = "Autenticazione richiesta"
    keeps_writes = True  # the rejection is recorded in auth_event

    def __init__(self, detail: str | None = None, *, invalid_token: bool = False) -> None:
        challenge = 'Bearer realm="snodo"'
        if invalid_token:
            challenge += ', error="invalid_token"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(ProblemError):
    status = 403
    slug = "forbidden"
    title_en = "Not allowed"
    title_it = "Operazione non consentita"


class NotFound(ProblemError):
    status = 404
    slug = "not-found"
    title_en = "Not found"
    title_it = "Risorsa non trovata"


class Conflict(ProblemError):
    status = 409
    slug = "conflict"
    title_en = "Conflicts with the current state"
    title_it = "In conflitto con lo stato attuale"


class InvalidGrant(ProblemError):
    """400 as OAuth 2.0 (RFC 6749 §5.2) wants for bad credentials at the token endpoint."""

    status = 400
    slug = "invalid-grant"
    title_en = "Invalid login or password"
    title_it = "Credenziali non valide"
    keeps_writes = True

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, extra={"error": "invalid_grant"})


class TooManyAttempts(ProblemError):
    status = 429
    slug = "too-many-attempts"
    title_en = "Too many failed attempts"
    title_it = "Troppi tentativi falliti"
    keeps_writes = True

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"Try again in {retry_after_s} seconds.",
            headers={"Retry-After": str(retry_after_s)},
            extra={"retry_after": retry_after_s},
        )


def field_error(field: str, message: str, code: str = "invalid") -> ValidationFailed:
    """A 422 naming one field, for rules that only the service can check."""
    return ValidationFailed(errors=[FieldError(field=field, message=message, code=code)])


class PreconditionFailed(ProblemError):
    status = 412
    slug = "stale-version"
    title_en = "The dossier changed since you read it"
    title_it = "La cartella è cambiata dopo la tua lettura"


class PreconditionRequired(ProblemError):
    status = 428
    slug = "if-match-required"
    title_en = "Send If-Match with the ETag you read"
    title_it = "Invia If-Match con l'ETag letto"


def _dotted(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def field_errors_from_pydantic(
    errors: Sequence[Mapping[str, Any]], language: Language = "en", prefix: Sequence[int | str] = ()
) -> list[FieldError]:
    """Pydantic's errors as our FieldErrors (dotted path, message, stable code)."""
    result = []
    for error in errors:
        code = str(error.get("type", "invalid"))
        result.append(
            FieldError(
                field=_dotted([*prefix, *error.get("loc", ())]),
                message=field_message(code, error.get("ctx") or {}, str(error.get("msg", "")), language),
                code=code,
            )
        )
    return result
