"""The chats as an API (docs/web.md): what the playground keeps, for API clients. Session
logins and keys with the `usage:read` scope read; writing needs a login or the `inference`
scope (the scope a chat client holds). Refusals in the management API's JSON shape."""

from __future__ import annotations

import secrets
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import KeyScope, request_user
from chats.models import ChatMessage, ChatSession

SEARCH_MAX = 200


class MessageOutput(serializers.ModelSerializer):
    cost = serializers.DecimalField(
        max_digits=24, decimal_places=12, coerce_to_string=True, allow_null=True
    )

    class Meta:
        model = ChatMessage
        fields = (
            "id",
            "role",
            "content",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "latency_ms",
            "feedback",
            "created_at",
        )


class SessionOutput(serializers.ModelSerializer):
    message_count = serializers.IntegerField(read_only=True)
    shared = serializers.SerializerMethodField()

    class Meta:
        model = ChatSession
        fields: tuple[str, ...] = (
            "id",
            "title",
            "model",
            "system_prompt",
            "created_at",
            "updated_at",
            "message_count",
            "shared",
        )

    def get_shared(self, session: ChatSession) -> bool:
        return bool(session.share_token)


class SessionInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    model = serializers.CharField(max_length=200, required=False, allow_blank=True)
    system_prompt = serializers.CharField(required=False, allow_blank=True, max_length=200_000)


class MessageInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=ChatMessage.Role.choices)
    content = serializers.CharField(max_length=200_000)
    model = serializers.CharField(max_length=200, required=False, allow_blank=True)
    prompt_tokens = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    completion_tokens = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    cost = serializers.DecimalField(
        max_digits=24, decimal_places=12, min_value=0, required=False, allow_null=True
    )
    latency_ms = serializers.IntegerField(min_value=0, required=False, allow_null=True)


class ChatScope(KeyScope):
    """Reading needs `usage:read` on a key, writing `inference`; logins may do both."""

    def has_permission(self, request: Request, view: Any) -> bool:
        view.required_scope = "usage:read" if request.method in ("GET", "HEAD") else "inference"
        return super().has_permission(request, view)


class ChatView(APIView):
    permission_classes = (IsAuthenticated, ChatScope)

    def sessions(self, request: Request) -> QuerySet[ChatSession]:
        # Ordered again: a grouped query drops the model's default order.
        return (
            ChatSession.objects.filter(user=request_user(request))
            .annotate(message_count=Count("messages"))
            .order_by("-updated_at", "-id")
        )

    def session(self, request: Request, session_id: int) -> ChatSession:
        return get_object_or_404(self.sessions(request), pk=session_id)


class SessionWithMessages(SessionOutput):
    messages = MessageOutput(many=True, read_only=True)

    class Meta(SessionOutput.Meta):
        fields = (*SessionOutput.Meta.fields, "messages")


SHARED = inline_serializer(
    "ChatShare", {"shared": serializers.BooleanField(), "share_url": serializers.URLField()}
)
UNSHARED = inline_serializer("ChatUnshare", {"shared": serializers.BooleanField()})


class Sessions(ListAPIView, ChatView):
    serializer_class = SessionOutput

    def get_queryset(self) -> QuerySet[ChatSession]:
        return self.sessions(self.request)

    @extend_schema(request=SessionInput, responses={201: SessionOutput})
    def post(self, request: Request) -> Response:
        given = SessionInput(data=request.data)
        given.is_valid(raise_exception=True)
        made = ChatSession.objects.create(user=request_user(request), **given.validated_data)
        return Response(SessionOutput(self.session(request, made.pk)).data, status=201)


class SessionDetail(ChatView):
    @extend_schema(responses=SessionWithMessages)
    def get(self, request: Request, session_id: int) -> Response:
        session = self.session(request, session_id)
        return Response(SessionWithMessages(session).data)

    @extend_schema(request=SessionInput, responses=SessionOutput)
    def patch(self, request: Request, session_id: int) -> Response:
        session = self.session(request, session_id)
        given = SessionInput(data=request.data, partial=True)
        given.is_valid(raise_exception=True)
        for name, value in given.validated_data.items():
            setattr(session, name, value)
        session.save()
        return Response(SessionOutput(session).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, session_id: int) -> Response:
        self.session(request, session_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionMessages(ChatView):
    @extend_schema(responses=inline_serializer("ChatMessages", {"data": MessageOutput(many=True)}))
    def get(self, request: Request, session_id: int) -> Response:
        session = self.session(request, session_id)
        return Response({"data": MessageOutput(session.messages.all(), many=True).data})

    @extend_schema(request=MessageInput, responses={201: MessageOutput})
    def post(self, request: Request, session_id: int) -> Response:
        session = self.session(request, session_id)
        given = MessageInput(data=request.data)
        given.is_valid(raise_exception=True)
        message = ChatMessage.objects.create(session=session, **given.validated_data)
        session.updated_at = message.created_at
        session.save(update_fields=["updated_at"])
        return Response(MessageOutput(message).data, status=201)


class SessionShare(ChatView):
    @extend_schema(request=None, responses=SHARED)
    def post(self, request: Request, session_id: int) -> Response:
        session = self.session(request, session_id)
        session.share_token = secrets.token_urlsafe(32)
        session.save(update_fields=["share_token"])
        url = request.build_absolute_uri(f"/share/{session.share_token}")
        return Response({"shared": True, "share_url": url})

    @extend_schema(responses=UNSHARED)
    def delete(self, request: Request, session_id: int) -> Response:
        session = self.session(request, session_id)
        session.share_token = None
        session.save(update_fields=["share_token"])
        return Response({"shared": False})


class FeedbackInput(serializers.Serializer):
    feedback = serializers.ChoiceField(choices=("good", "bad", "none"))


class MessageFeedback(ChatView):
    @extend_schema(request=FeedbackInput, responses=MessageOutput)
    def post(self, request: Request, message_id: int) -> Response:
        message = get_object_or_404(
            ChatMessage, pk=message_id, session__user=request_user(request), role="assistant"
        )
        given = FeedbackInput(data=request.data)
        given.is_valid(raise_exception=True)
        message.feedback = {"good": 1, "bad": -1, "none": 0}[given.validated_data["feedback"]]
        message.save(update_fields=["feedback"])
        return Response(MessageOutput(message).data)


class Search(ChatView):
    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True)],
        responses=inline_serializer(
            "ChatSearch", {"query": serializers.CharField(), "data": SessionOutput(many=True)}
        ),
    )
    def get(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()[:SEARCH_MAX]
        if not query:
            return Response(
                {"detail": "Give `q`, the words to look for.", "code": "invalid_request"},
                status=400,
            )
        matching = ChatSession.objects.filter(
            Q(title__icontains=query) | Q(messages__content__icontains=query)
        ).values("pk")
        found = self.sessions(request).filter(pk__in=matching)[:50]
        return Response({"query": query, "data": SessionOutput(found, many=True).data})
