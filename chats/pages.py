"""/chats: a customer's conversations (search, rename, delete, share a read-only link,
feedback per answer) and /share/<token>, the public page of a shared one."""

from __future__ import annotations

import secrets

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.authentication import request_user
from chats.models import ChatMessage, ChatSession

PAGE_SIZE = 25


class RenameForm(forms.Form):
    title = forms.CharField(max_length=200)


def _mine(request: HttpRequest, session_id: int) -> ChatSession:
    return get_object_or_404(ChatSession, pk=session_id, user=request_user(request))


@login_required
def chats(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    found = ChatSession.objects.filter(user=request_user(request))
    if query:  # matched in a subquery: a join here would multiply the message counts
        matching = ChatSession.objects.filter(
            Q(title__icontains=query) | Q(messages__content__icontains=query)
        ).values("pk")
        found = found.filter(pk__in=matching)
    found = found.annotate(turns=Count("messages")).order_by("-updated_at", "-id")
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "chats/chats.html", {"page": page, "query": query})


@login_required
@require_http_methods(["GET", "POST"])
def chat_rename(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _mine(request, session_id)
    form = RenameForm(request.POST or None, initial={"title": session.title})
    if request.method == "POST" and form.is_valid():
        session.title = form.cleaned_data["title"]
        session.save(update_fields=["title"])
        messages.success(request, "Renamed.")
        return redirect("chats")
    status = 422 if form.errors else 200
    return render(request, "chats/rename.html", {"session": session, "form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def chat_delete(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _mine(request, session_id)
    if request.method == "POST":
        session.delete()
        messages.success(request, f"Deleted “{session}”.")
        return redirect("chats")
    return render(request, "chats/delete.html", {"session": session})


@login_required
@require_POST
def chat_share(request: HttpRequest, session_id: int) -> HttpResponse:
    """Turns the read-only link on (a new token each time) or off (`revoke`)."""
    session = _mine(request, session_id)
    if request.POST.get("revoke"):
        session.share_token = None
        messages.success(request, "The link no longer works.")
    else:
        session.share_token = secrets.token_urlsafe(32)
        messages.success(request, "Anyone with the link can read this chat.")
    session.save(update_fields=["share_token"])
    return redirect("chat-settings", session_id=session.pk)


@login_required
def chat_settings(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _mine(request, session_id)
    share_url = (
        request.build_absolute_uri(f"/share/{session.share_token}") if session.share_token else ""
    )
    return render(request, "chats/settings.html", {"session": session, "share_url": share_url})


@login_required
@require_POST
def message_feedback(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(
        ChatMessage, pk=message_id, session__user=request_user(request), role="assistant"
    )
    value = {"good": 1, "bad": -1, "none": 0}.get(request.POST.get("feedback", ""))
    if value is None:
        return HttpResponse("feedback is good, bad or none", status=400)
    message.feedback = value
    message.save(update_fields=["feedback"])
    if request.htmx:  # type: ignore[attr-defined]  # django-htmx's middleware sets it
        return render(request, "chats/feedback.html", {"message": message})
    return redirect("playground-session", session_id=message.session_id)


def shared(request: HttpRequest, token: str) -> HttpResponse:
    session = ChatSession.objects.filter(share_token=token).first() if token else None
    if session is None:
        raise Http404("This link was turned off, or never existed.")
    context = {"session": session, "history": list(session.messages.all())}
    answer = render(request, "chats/shared.html", context)
    answer["X-Robots-Tag"] = "noindex"
    return answer
