"""Where Stripe's Checkout sends the customer back. The page only reports: credit is
granted by Stripe's signed event (payments.checkout_events), never by this visit, which
anyone can make with a session id in the address."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from payments.models import Payment


def checkout_success(request: HttpRequest) -> HttpResponse:
    session_id = request.GET.get("session_id", "")[:255]
    payment = Payment.objects.filter(checkout_session_id=session_id).first() if session_id else None
    return render(request, "payments/checkout_return.html", {"payment": payment, "paid": True})


def checkout_cancel(request: HttpRequest) -> HttpResponse:
    return render(request, "payments/checkout_return.html", {"payment": None, "paid": False})
