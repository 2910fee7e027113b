"""The chats as an API: sessions, messages, search, share and feedback, each customer's
own; reading needs `usage:read` on a key, writing `inference`. Over the live ASGI app too:
/v1/chat/sessions is Django's, not the gateway's."""

from __future__ import annotations

import uuid

import httpx
import pytest
from django.test import Client

from accounts.services import api_key_create, user_create
from chats.models import ChatSession


def _customer():
    user = user_create(email=f"api-{uuid.uuid4().hex[:10]}@example.com", password="x" * 12)
    client = Client()
    client.force_login(user)
    return user, client


@pytest.mark.django_db
@pytest.mark.smoke
def test_sessions_messages_search_share_feedback():
    _, client = _customer()
    made = client.post(
        "/v1/chat/sessions",
        {"title": "Trip", "model": "test/echo"},
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    sid = made.json()["id"]
    asked = client.post(
        f"/v1/chat/sessions/{sid}/messages",
        {"role": "user", "content": "Where to in Lisbon?"},
        content_type="application/json",
    )
    answered = client.post(
        f"/v1/chat/sessions/{sid}/messages",
        {"role": "assistant", "content": "Alfama.", "cost": "0.000042", "completion_tokens": 3},
        content_type="application/json",
    )
    assert asked.status_code == answered.status_code == 201
    detail = client.get(f"/v1/chat/sessions/{sid}").json()
    assert detail["message_count"] == 2 and detail["messages"][1]["cost"] == "0.000042000000"
    assert client.get("/v1/chat/search", {"q": "lisbon"}).json()["data"][0]["id"] == sid
    assert client.get("/v1/chat/search", {"q": "lisbon"}).json()["data"][0]["message_count"] == 2
    assert client.get("/v1/chat/search").status_code == 400
    shared = client.post(f"/v1/chat/sessions/{sid}/share").json()
    assert Client().get(shared["share_url"].split("testserver")[1]).status_code == 200
    assert client.delete(f"/v1/chat/sessions/{sid}/share").json() == {"shared": False}
    assert Client().get(shared["share_url"].split("testserver")[1]).status_code == 404
    rated = client.post(
        f"/v1/chat/messages/{answered.json()['id']}/feedback",
        {"feedback": "bad"},
        content_type="application/json",
    )
    assert rated.json()["feedback"] == -1
    renamed = client.patch(
        f"/v1/chat/sessions/{sid}", {"title": "Lisbon"}, content_type="application/json"
    )
    assert renamed.json()["title"] == "Lisbon"
    assert client.delete(f"/v1/chat/sessions/{sid}").status_code == 204
    assert not ChatSession.objects.filter(pk=sid).exists()


@pytest.mark.django_db
@pytest.mark.smoke
def test_another_customers_chats_are_not_there():
    _, theirs = _customer()
    _, mine = _customer()
    sid = theirs.post("/v1/chat/sessions", {}, content_type="application/json").json()["id"]
    assert mine.get(f"/v1/chat/sessions/{sid}").status_code == 404
    assert mine.delete(f"/v1/chat/sessions/{sid}").status_code == 404
    assert mine.get("/v1/chat/sessions").json()["results"] == []
    bad = mine.post("/v1/chat/sessions/abc/messages", {}, content_type="application/json")
    assert bad.status_code == 404


@pytest.mark.usefixtures("live_db")
def test_over_http_with_keys_and_their_scopes(site):
    user = user_create(email=f"k-{uuid.uuid4().hex[:10]}@example.com")
    _, reader = api_key_create(user=user, name="read", scopes=["usage:read"])
    _, writer = api_key_create(user=user, name="write", scopes=["inference"])

    def call(method: str, path: str, key: str, **kwargs):
        return httpx.request(
            method, f"{site.url}{path}", headers={"authorization": f"Bearer {key}"}, **kwargs
        )

    made = call("POST", "/v1/chat/sessions", writer, json={"title": "from an SDK"})
    assert made.status_code == 201, made.text
    assert call("POST", "/v1/chat/sessions", reader, json={}).status_code == 403
    listed = call("GET", "/v1/chat/sessions", reader).json()
    assert [s["title"] for s in listed["results"]] == ["from an SDK"]
    assert call("GET", "/v1/chat/sessions", writer).status_code == 403
    # The gateway's own routes beside them are untouched.
    assert call("GET", "/v1/models", writer).status_code == 200
