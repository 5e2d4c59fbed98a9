"""The two languages of snodo's messages: Italian for the people who use it, English by default."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Literal

Language = Literal["en", "it"]

_TITLES_IT: dict[int, str] = {
    400: "Richiesta non valida",
    401: "Autenticazione richiesta",
    403: "Accesso non consentito",
    404: "Risorsa non trovata",
    405: "Metodo non consentito",
    406: "Formato non disponibile",
    409: "Conflitto con lo stato attuale",
    412: "La risorsa è cambiata nel frattempo",
    413: "Richiesta troppo grande",
    415: "Tipo di contenuto non supportato",
    422: "Dati non validi",
    428: "Serve l'intestazione If-Match",
    429: "Troppe richieste",
    500: "Errore interno",
    503: "Servizio non disponibile",
}

# Italian text for the pydantic error codes people actually meet; others keep pydantic's English.
_FIELD_MESSAGES_IT: dict[str, str] = {
    "missing": "Campo obbligatorio",
    "extra_forbidden": "Campo non previsto",
    "string_type": "Deve essere un testo",
    "string_too_long": "Testo troppo lungo (massimo {max_length} caratteri)",
    "string_too_short": "Testo troppo corto (minimo {min_length} caratteri)",
    "string_pattern_mismatch": "Formato non valido",
    "int_parsing": "Deve essere un numero intero",
    "int_type": "Deve essere un numero intero",
    "float_parsing": "Deve essere un numero",
    "bool_parsing": "Deve essere vero o falso",
    "date_parsing": "Data non valida (formato AAAA-MM-GG)",
    "date_from_datetime_parsing": "Data non valida (formato AAAA-MM-GG)",
    "datetime_parsing": "Data e ora non valide (ISO 8601)",
    "datetime_from_date_parsing": "Data e ora non valide (ISO 8601)",
    "uuid_parsing": "Identificativo non valido",
    "uuid_type": "Identificativo non valido",
    "enum": "Valore non ammesso (ammessi: {expected})",
    "literal_error": "Valore non ammesso (ammessi: {expected})",
    "less_than_equal": "Deve essere al massimo {le}",
    "greater_than_equal": "Deve essere almeno {ge}",
    "too_long": "Troppi elementi (massimo {max_length})",
    "too_short": "Troppo pochi elementi (minimo {min_length})",
    "list_type": "Deve essere una lista",
    "dict_type": "Deve essere un oggetto",
    "model_attributes_type": "Deve essere un oggetto",
    "json_invalid": "JSON non valido",
    "value_error": "Valore non valido",
}


def negotiate_language(header: str | None) -> Language:
    """Pick Italian when the client prefers it over English, else English."""
    if not header:
        return "en"
    best: tuple[float, Language] = (0.0, "en")
    for part in header.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("it", "en"):
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if quality > best[0]:
            best = (quality, "it" if primary == "it" else "en")
    return best[1]


def title_for(status: int, language: Language) -> str:
    if language == "it" and status in _TITLES_IT:
        return _TITLES_IT[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def field_message(code: str, ctx: Mapping[str, Any], default: str, language: Language) -> str:
    if language != "it" or code not in _FIELD_MESSAGES_IT:
        return default
    try:
        return _FIELD_MESSAGES_IT[code].format(**ctx)
    except (KeyError, IndexError):
        return _FIELD_MESSAGES_IT[code].split(" (")[0]
