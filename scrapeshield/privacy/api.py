"""The admin endpoint through which the platform sets its users' privacy levels.

``PUT /api/privacy`` with ``{"level": "protected", "user_id": 42, "username": "ana"}`` (or
``"records": ["user:42", "username:ana"]``): one user usually has a record per route kind
(the JSON API names the id, the profile page the username), so both are set at once.
``GET /api/privacy?record=user:42`` reads one back. Every change is in the audit trail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scrapeshield.privacy.levels import MAX_RECORD, Level

if TYPE_CHECKING:
    from scrapeshield.runtime import Shield

MAX_BODY = 65_536
MAX_RECORDS = 100


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Level
    user_id: int | None = Field(default=None, ge=0)
    username: str | None = Field(default=None, min_length=1, max_length=MAX_RECORD - 9)
    records: list[str] = Field(default_factory=list, max_length=MAX_RECORDS)

    def names(self) -> list[str]:
        out = list(self.records)
        if self.user_id is not None:
            out.append(f"user:{self.user_id}")
        if self.username is not None:
            out.append(f"username:{self.username}")
        return out


def privacy_endpoint(
    shield: Shield, actor: Callable[[Request], str]
) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        levels = shield.engine.privacy
        if request.method == "GET":
            record = request.query_params.get("record", "")
            if not record:
                return JSONResponse({"error": "give ?record=kind:value"}, status_code=400)
            return JSONResponse({"record": record, "level": levels.get(record)})
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            data = LevelIn.model_validate_json(body)
            names = data.names()
            if not names:
                raise ValueError("name the user: user_id, username or records")
            now = shield.clock.now()
            levels.set(names, data.level, actor(request), now)
        except (ValidationError, ValueError) as exc:
            return JSONResponse({"error": str(exc).splitlines()[0][:300]}, status_code=400)
        shield.db.audit(now, actor(request), "privacy.set", {"records": names, "level": data.level})
        return JSONResponse({"records": names, "level": data.level})

    return handler
