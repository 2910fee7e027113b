"""POST /api/stripe/webhook: Stripe's events, verified by their signature (the endpoint's
secret, STRIPE_WEBHOOK_SECRET) before anything is read or stored. A bad signature or body
changes nothing (400). A handler that fails answers 500, so that Stripe delivers the event
again later; the stored event keeps the error (payments.events)."""

from __future__ import annotations

import json

import stripe
from django.conf import settings
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payments.api import refusal
from payments.events import event_receive
from payments.models import StripeEvent

# Stripe's own default: a signature older than this is refused (replayed deliveries).
TOLERANCE_SECONDS = 300


class RawBody(BaseParser):
    """Leaves the body as it came: the signature is over its exact bytes."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        return None


class StripeWebhook(APIView):
    authentication_classes = ()  # Stripe signs the body instead (no session, no CSRF)
    permission_classes = (AllowAny,)
    parser_classes = (RawBody,)
    throttle_classes = ()

    @extend_schema(
        summary="Stripe's events (signed with the endpoint's secret)",
        request={"application/json": {"type": "object", "description": "A Stripe Event"}},
        parameters=[
            OpenApiParameter(
                "Stripe-Signature",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description='t=<unix time>,v1=<HMAC-SHA256 of "t.body"> (Stripe\'s scheme)',
            )
        ],
        responses={
            200: inline_serializer(
                "WebhookReceived",
                {
                    "received": serializers.BooleanField(),
                    "status": serializers.ChoiceField(choices=StripeEvent.Status.values),
                },
            ),
            400: OpenApiResponse(description="Bad signature or not an event: nothing stored"),
            500: OpenApiResponse(description="Stored, failed: Stripe delivers it again"),
            503: OpenApiResponse(description="Payments are not configured"),
        },
    )
    def post(self, request: Request) -> Response:
        secret = settings.STRIPE_WEBHOOK_SECRET
        if not secret:
            message = "Payments are not configured (no STRIPE_WEBHOOK_SECRET)."
            return refusal(503, message, "payments_not_configured")
        body = request._request.body  # the exact bytes Stripe signed
        try:
            stripe.WebhookSignature.verify_header(
                body.decode("utf-8"),
                request.headers.get("Stripe-Signature", ""),
                secret,
                TOLERANCE_SECONDS,
            )
            data = json.loads(body)
        except stripe.SignatureVerificationError:
            message = "The Stripe-Signature header does not sign this body."
            return refusal(400, message, "invalid_signature")
        except (UnicodeDecodeError, ValueError):
            return refusal(400, "The body is not a JSON event.", "invalid_payload")
        if not (
            isinstance(data, dict)
            and isinstance(data.get("id"), str)
            and isinstance(data.get("type"), str)
        ):
            return refusal(400, "The body is not a Stripe event.", "invalid_payload")
        event = event_receive(data)
        if event.status == StripeEvent.Status.FAILED:
            message = "The event could not be processed; it is kept and will be retried."
            return refusal(500, message, "processing_failed")
        return Response({"received": True, "status": event.status})
