"""Runtime configuration, read once from the environment."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, HttpUrl, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class OidcIssuer(BaseModel):
    """An external identity provider whose ID/access tokens snodo accepts (SPID/CIE gateway, Keycloak)."""

    issuer: str = Field(min_length=1, max_length=500)
    audience: str = Field(min_length=1, max_length=500)
    jwks_url: HttpUrl
    # Which claim names the person, and what it is matched against locally:
    # `subject` → an ExternalIdentity (issuer, subject); `fiscal_code` → the user's codice fiscale.
    claim: str = "sub"
    match: Literal["subject", "fiscal_code"] = "subject"
    algorithms: list[Literal["RS256", "RS384", "RS512", "ES256", "ES384"]] = ["RS256", "ES256"]


class Settings(BaseSettings):
    """Every knob snodo reads; `DATABASE_URL` unset means the embedded PostgreSQL."""

    model_config = SettingsConfigDict(env_prefix="SNODO_", extra="ignore")

    environment: Environment = Environment.development
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = Path("./var")
    # The reverse proxies whose X-Forwarded-For/-Proto snodo believes (addresses or CIDR blocks).
    # Empty: none; the client address is the TCP peer's. Never "*" behind an open port.
    trusted_proxies: list[str] = Field(default_factory=list, max_length=50)
    log_level: str = "INFO"
    log_json: bool = True
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    db_pool_size: int = Field(default=20, ge=1)  # at least the expected concurrency: see docs/performance.md
    db_pool_overflow: int = Field(default=10, ge=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=100)
    # The application runs as this role (SET ROLE on each new connection): it may read and write
    # data but not alter tables nor change past access-log rows. Empty: use the login role as is.
    db_role: str = Field(default="snodo_app", pattern=r"^[a-z_][a-z0-9_]{0,62}$|^$")

    # Local SPA login: HS256 access tokens signed with this secret (≥ 32 characters).
    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "snodo"
    jwt_audience: str = "snodo-api"
    access_token_ttl_s: int = Field(default=900, ge=30, le=900)
    refresh_token_ttl_s: int = Field(default=12 * 3600, ge=60)
    session_max_age_s: int = Field(default=7 * 24 * 3600, ge=60)
    # A refresh token exchanged less than this many seconds ago may be exchanged again (for a new
    # pair of the same session) instead of counting as stolen: two tabs of the SPA refresh together.
    # 0: every second exchange closes the session.
    refresh_reuse_grace_s: int = Field(default=30, ge=0, le=120)
    oidc_issuers: list[OidcIssuer] = []
    jwks_cache_ttl_s: int = Field(default=3600, ge=1)
    jwks_min_refetch_interval_s: float = Field(default=60.0, ge=0)

    # Login throttling, failures within the window (an account's since its last success): of one
    # account from one client address; of one account from every address, except at an address
    # where it logged in within `login_known_address_days` (an attacker elsewhere cannot lock its
    # user out there); from one address, whatever the account.
    login_window_s: int = Field(default=900, ge=1)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_account_all_addresses: int = Field(default=20, ge=1)
    login_known_address_days: int = Field(default=30, ge=0)
    login_max_failures_per_address: int = Field(default=30, ge=1)
    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile).
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    api_token_max_days: int = Field(default=366, ge=1)
    cors_origins: list[str] = []

    # Encrypts secrets kept at rest (webhook signing secrets): a Fernet key (urlsafe base64, 32 bytes).
    data_key: SecretStr | None = None

    # Outbound webhooks. Subscription hosts must match the allow-list (fnmatch patterns, e.g.
    # "*.asst-melegnano-martesana.it"); empty allows none. Private, loopback and link-local
    # addresses are refused unless allowed (local testing only), and so is plain http.
    webhook_allowed_hosts: list[str] = []
    webhook_allow_http: bool = False
    webhook_allow_private_addresses: bool = False
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_max_attempts: int = Field(default=12, ge=1, le=50)
    webhook_backoff_base_s: float = Field(default=5.0, gt=0)
    webhook_backoff_max_s: float = Field(default=6 * 3600.0, gt=0)
    webhook_lease_s: float = Field(default=60.0, gt=0)
    webhook_pause_after_failures: int = Field(default=50, ge=1)
    webhook_secret_grace_s: int = Field(default=24 * 3600, ge=0)
    webhook_batch: int = Field(default=20, ge=1, le=500)
    webhook_concurrency: int = Field(default=8, ge=1, le=100)
    webhook_poll_s: float = Field(default=1.0, gt=0)
    # `snodo serve` delivers webhooks itself unless told not to (then run `snodo worker`).
    worker_in_process: bool = True

    # Inbound events: tolerance on webhook-timestamp, and the largest body accepted.
    inbound_tolerance_s: int = Field(default=300, ge=1)
    inbound_max_bytes: int = Field(default=256 * 1024, ge=1024)

    @field_validator("database_url")
    @classmethod
    def _normalise_driver(cls, value: str | None) -> str | None:
        return normalise_database_url(value) if value else None

    @field_validator("jwt_secret")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("SNODO_JWT_SECRET must be at least 32 characters")
        return value

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        problems = self.production_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """Every setting production needs and lacks, each in one line (all at once, not one per run)."""
        if self.environment != Environment.production:
            return []
        problems = []
        if self.jwt_secret is None:
            problems.append("SNODO_JWT_SECRET is required in production (at least 32 characters)")
        if self.data_key is None:
            problems.append("SNODO_DATA_KEY is required in production (a Fernet key, see the README)")
        if self.database_url is None:
            problems.append(
                "DATABASE_URL is required in production (the embedded database is for development)"
            )
        # Whoever can alter a JWKS response can mint tokens: keys travel over TLS only.
        plain = [i.issuer for i in self.oidc_issuers if i.jwks_url.scheme != "https"]
        if plain:
            problems.append(f"SNODO_OIDC_ISSUERS: jwks_url must be https in production (issuers: {plain})")
        return problems

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"


def normalise_database_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and use the asyncpg driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()


def describe_invalid(error: ValidationError) -> list[str]:
    """One line per wrong setting, named as it is set (`SNODO_…` or `DATABASE_URL`)."""
    lines = []
    for item in error.errors():
        if not item["loc"]:  # the production check: its lines are joined in one message
            message = str(item["msg"]).removeprefix("Value error, ")
            lines.extend(message.split("; "))
            continue
        name = str(item["loc"][0])
        variable = "DATABASE_URL" if name in ("database_url", "DATABASE_URL") else f"SNODO_{name.upper()}"
        lines.append(f"{variable}: {str(item['msg']).removeprefix('Value error, ')}")
    return lines
