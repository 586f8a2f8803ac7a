"""Settings: each function declares one pydantic model of its environment variables, checked at
cold start. A missing or malformed variable stops the function with a message naming it."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from courier.errors import ConfigurationError


class BaseSettings(BaseModel):
    """Common settings. Field aliases are the environment variable names."""

    # Schemas are built on first validation: each function validates one settings model, and
    # building the others (and this base) at import would only slow its cold start.
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    table_name: str = Field(alias="LEDGER_TABLE", min_length=3, description="DynamoDB run ledger table")
    retention_days: int = Field(
        default=90, alias="RETENTION_DAYS", ge=1, le=3650, description="days a finished run is kept"
    )


def load_settings[S: BaseModel](model: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Validate `environ` (default: os.environ) against `model`; raise ConfigurationError listing
    every problem by its environment variable name."""
    env = dict(os.environ if environ is None else environ)
    try:
        return model.model_validate(env)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "?"
            if err["type"] == "missing":
                problems.append(f"{name} is not set")
            else:
                problems.append(f"{name}: {err['msg']}")
        raise ConfigurationError(model.__name__, problems) from None


def csv_list(value: str | list[str] | None) -> list[str]:
    """Turn a comma-separated environment value into a list (empty items dropped)."""
    if value is None:
        return []
    if isinstance(value, list):
        return [v.strip() for v in value if v.strip()]
    return [v.strip() for v in value.split(",") if v.strip()]
