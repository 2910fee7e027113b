"""The playground: chat with any model from the browser, tokens shown as they stream.

The page's script calls the gateway's own `/v1/chat/completions` (SSE), as any client
does, with a key made for the tab: POST /playground/key answers one (inference only, an
hour long; the customer's previous playground key is revoked), never written into the
page's HTML. Each exchange is then kept (POST /playground/save) as a chat session with its
cost and latency, which /chats lists."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.authentication import request_user
from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke
from chats.models import ChatMessage, ChatSession
from providers.catalog import catalog_recent

KEY_LIFETIME = timedelta(hours=1)
TITLE_LENGTH = 60
MAX_MESSAGE = 200_000  # characters kept per message


@login_required
def playground(request: HttpRequest, session_id: int | None = None) -> HttpResponse:
    user = request_user(request)
    session = None
    if session_id is not None:
        session = get_object_or_404(ChatSession, pk=session_id, user=user)
    chat_models = sorted(m.id for m in catalog_recent().models.values() if m.kind == "chat")
    chosen = (session.model if session else "") or (chat_models[0] if chat_models else "")
    context = {
        "session": session,
        "history": list(session.messages.all()) if session else [],
        "chat_models": chat_models,
        "chosen": chosen,
    }
    return render(request, "chats/playground.html", context)


@never_cache
@login_required
@require_POST
def playground_key(request: HttpRequest) -> JsonResponse:
    user = request_user(request)
    with transaction.atomic():
        alive = ApiKey.objects.filter(
            user=user, purpose=ApiKey.Purpose.PLAYGROUND, revoked_at__isnull=True
        )
        for old in alive.select_for_update():
            api_key_revoke(api_key=old)
        api_key, raw = api_key_create(
            user=user,
            name="Playground",
            expires_at=timezone.now() + KEY_LIFETIME,
            scopes=["inference"],
            purpose=ApiKey.Purpose.PLAYGROUND,
        )
    assert api_key.expires_at is not None
    return JsonResponse({"key": raw, "expires_at": api_key.expires_at.isoformat()})


class Refused(ValueError):
    pass


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Refused("token counts are whole numbers")
    return value


def _cost(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        raise Refused("cost is a decimal") from None
    if not cost.is_finite() or cost < 0:
        raise Refused("cost is a decimal")
    return cost.quantize(Decimal("1e-12"))


@login_required
@require_POST
def playground_save(request: HttpRequest) -> JsonResponse:
    """Keeps one exchange: the question and the answer with its figures."""
    user = request_user(request)
    try:
        body = json.loads(request.body or b"{}")
        question, answer = str(body["question"]), str(body["answer"])
        model = str(body.get("model", ""))[:200]
        usage = body.get("usage") or {}
        figures = {
            "prompt_tokens": _count(usage.get("prompt_tokens")),
            "completion_tokens": _count(usage.get("completion_tokens")),
            "cost": _cost(usage.get("cost")),
            "latency_ms": _count(body.get("latency_ms")),
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return JsonResponse({"detail": f"Not an exchange: {error}"}, status=400)
    with transaction.atomic():
        if body.get("session_id"):
            session = get_object_or_404(
                ChatSession.objects.select_for_update(), pk=body["session_id"], user=user
            )
        else:
            session = ChatSession.objects.create(user=user, title=question[:TITLE_LENGTH])
        session.model = model
        session.system_prompt = str(body.get("system_prompt", ""))[:MAX_MESSAGE]
        session.updated_at = timezone.now()
        session.save(update_fields=["model", "system_prompt", "updated_at"])
        ChatMessage.objects.create(session=session, role="user", content=question[:MAX_MESSAGE])
        ChatMessage.objects.create(
            session=session, role="assistant", content=answer[:MAX_MESSAGE], model=model, **figures
        )
    return JsonResponse({"session_id": session.pk})
