"""What every router of the API shares about refusals: the {"error": ...} body that every 4xx and
5xx answer carries, the JSON bodies that name the keys they do not know, and the query parameters
whose bounds the OpenAPI document states while the operation's own code checks them.

The routers and the playgrounds' routers import it; it imports none of them.
"""

from typing import Any

from ninja import Query, Schema
from pydantic import ConfigDict, model_validator
from pydantic_core import PydanticCustomError


class Error(Schema):
    """The body of every refusal: what went wrong and what to do about it."""

    error: str


class StrictBody(Schema):
    """A JSON request body that refuses unknown keys with 400, naming the key and the fields it
    takes ("step: unknown field; the fields are method, task, steps, seed, params"), and says so
    in the OpenAPI document (additionalProperties: false)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [str(key) for key in data if key not in cls.model_fields]
            if unknown:
                raise PydanticCustomError(
                    "unknown_field",
                    "{names}: unknown field{s}; the fields are {fields}",
                    {
                        "names": ", ".join(unknown),
                        "s": "s" if len(unknown) > 1 else "",
                        "fields": ", ".join(cls.model_fields),
                    },
                )
        return data


def checked_query(
    default: Any = ...,
    *,
    description: str | None = None,
    max_length: int | None = None,
    allow_inf_nan: bool | None = None,
    **schema: Any,
) -> Any:
    """A query parameter whose constraints (minimum, maximum, enum, pattern ...) the operation's
    own code enforces, with a message that says what was sent: written into the OpenAPI document
    here, not checked by pydantic first. Query(24, ge=4) would answer pydantic's message instead.
    (max_length and allow_inf_nan, if given, pydantic does check.)"""
    enforced = {} if allow_inf_nan is None else {"allow_inf_nan": allow_inf_nan}
    param = Query(default, description=description, max_length=max_length, **enforced)
    param.json_schema_extra.update(schema)  # the dict ninja made for this parameter
    return param
