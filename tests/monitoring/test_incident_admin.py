"""Incidents in the admin: listed for staff, the note theirs to write, the measurements not."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.services import user_create
from monitoring.models import Incident

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def test_staff_write_the_note_and_nothing_else():
    admin = user_create(email="incident-admin@example.com", password="long pass phrase!")
    admin.role = "admin"
    admin.save()
    incident = Incident.objects.create(provider="mock", kind="error_surge", peak=0.4, detail="x")
    client = Client()
    client.force_login(admin)
    assert client.get("/admin/monitoring/incident/").status_code == 200
    page = f"/admin/monitoring/incident/{incident.pk}/change/"
    answer = client.post(page, {"note": "the provider's region failed; moved traffic", "peak": 0})
    assert answer.status_code == 302
    incident.refresh_from_db()
    assert incident.note.startswith("the provider's region") and incident.peak == 0.4
    assert client.get("/admin/monitoring/incident/add/").status_code == 403
