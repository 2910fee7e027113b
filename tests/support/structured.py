"""The structured answer the compatibility tests ask for, and what the mock providers answer
for its schema (mockserver.json_schema: every property, strings named after themselves)."""

from __future__ import annotations

from pydantic import BaseModel


class Event(BaseModel):
    name: str
    date: str
    attendees: list[str]
    confirmed: bool


EVENT = Event(name="name", date="date", attendees=["attendees"], confirmed=True)
ASK = "Alice and Bob go to a science fair on Friday."
