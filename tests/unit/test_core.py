"""Small pure pieces: URL normalisation, language negotiation, JSON logs."""

from __future__ import annotations

import json
import logging

import pytest

from app.core.context import request_id_var
from app.core.i18n import negotiate_language
from app.core.logging import JsonFormatter
from app.core.settings import normalise_database_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db/snodo", "postgresql+asyncpg://u:p@db/snodo"),
        ("postgresql://u@db:5433/snodo", "postgresql+asyncpg://u@db:5433/snodo"),
        ("postgresql+psycopg://u@db/snodo", "postgresql+asyncpg://u@db/snodo"),
        ("postgresql+asyncpg://u@db/snodo", "postgresql+asyncpg://u@db/snodo"),
    ],
)
def test_database_urls_use_asyncpg(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("it", "it"),
        ("it-IT,it;q=0.9,en-US;q=0.8", "it"),
        ("en-GB,en;q=0.9,it;q=0.8", "en"),
        ("fr-FR,it;q=0.5", "it"),
        ("it;q=abc", "en"),
        ("de", "en"),
    ],
)
def test_language_negotiation(header: str | None, language: str) -> None:
    assert negotiate_language(header) == language


def test_json_log_lines_carry_the_request_id() -> None:
    token = request_id_var.set("req-123")
    try:
        record = logging.makeLogRecord({"msg": "GET %s", "args": ("/x",), "levelname": "INFO", "status": 200})
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "GET /x"
    assert line["request_id"] == "req-123"
    assert line["status"] == 200


def test_production_refuses_plain_http_jwks() -> None:
    from pydantic import SecretStr, ValidationError

    from app.core.settings import Environment, OidcIssuer, Settings

    issuer = OidcIssuer(issuer="https://idp", audience="snodo", jwks_url="http://idp/jwks.json")
    with pytest.raises(ValidationError, match="https"):
        Settings(
            environment=Environment.production,
            database_url="postgresql://db/snodo",
            jwt_secret=SecretStr("s" * 40),
            oidc_issuers=[issuer],
        )


def test_production_needs_a_jwt_secret_and_a_database() -> None:
    from pydantic import ValidationError

    from app.core.settings import Environment, Settings

    with pytest.raises(ValidationError, match="SNODO_JWT_SECRET"):
        Settings(environment=Environment.production, database_url="postgresql://db/snodo")


def _migrate_with_fresh_settings() -> int:
    """`snodo migrate` reading the environment as it is now (settings are cached per process)."""
    from app.cli import main
    from app.core.settings import get_settings

    get_settings.cache_clear()
    try:
        return main(["migrate"])
    finally:
        get_settings.cache_clear()


def test_production_start_up_names_every_missing_setting_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DATABASE_URL", "SNODO_JWT_SECRET", "SNODO_DATA_KEY", "SNODO_OIDC_ISSUERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SNODO_ENVIRONMENT", "production")
    monkeypatch.setenv("SNODO_DB_POOL_SIZE", "20")
    assert _migrate_with_fresh_settings() == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "snodo: 3 setting(s) to fix before starting:"
    assert [line.split()[1] for line in lines[1:]] == ["SNODO_JWT_SECRET", "SNODO_DATA_KEY", "DATABASE_URL"]
    assert "Traceback" not in "\n".join(lines)


def test_a_wrong_value_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SNODO_DB_POOL_SIZE", "twenty")
    monkeypatch.setenv("SNODO_JWT_SECRET", "short")
    assert _migrate_with_fresh_settings() == 2
    err = capsys.readouterr().err
    assert "  - SNODO_DB_POOL_SIZE: " in err
    assert "  - SNODO_JWT_SECRET: SNODO_JWT_SECRET must be at least 32 characters" in err


def test_forwarded_headers_are_believed_only_from_the_trusted_proxies() -> None:
    from app.cli import forwarding
    from app.core.settings import Settings

    assert forwarding(Settings(), None) == {"proxy_headers": False, "forwarded_allow_ips": "127.0.0.1"}
    proxied = Settings(trusted_proxies=["10.0.0.5", "10.1.0.0/16"])
    assert forwarding(proxied, None) == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.5,10.1.0.0/16"}
    assert forwarding(proxied, "192.0.2.1")["forwarded_allow_ips"] == "192.0.2.1"
