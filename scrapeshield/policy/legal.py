"""The policy's ``legal`` section: what personal data each field is, and the platform's terms.

``data_map`` names the data category of every personal field that routes expose (a route's
``personal_fields``); breach assessment (``scrapeshield.legal.breach``) counts categories with
it. ``terms_file`` and ``robots_file`` are the texts in force that an evidence pack quotes.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

CategoryName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")]


class Legal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_map: dict[str, CategoryName] = Field(default_factory=dict)  # personal field → category
    terms_file: str | None = None  # the terms of service in force (a file, relative to the policy)
    robots_file: str | None = None  # the robots.txt in force (a file, relative to the policy)
