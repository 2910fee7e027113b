"""Incidents in the admin: staff read what opened and closed by itself, and write the note
(cause, action, follow-up). The request log's page is billing's (it is written with the
ledger); health samples and rollups are read through the monitoring API and dashboards."""

from __future__ import annotations

from django.contrib import admin

from monitoring.models import Incident


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("opened_at", "provider", "model", "kind", "peak", "closed_at", "has_note")
    list_filter = ("kind", ("closed_at", admin.EmptyFieldListFilter), "provider")
    search_fields = ("provider", "model", "detail", "note")
    date_hierarchy = "opened_at"
    # What monitoring measured stays as measured; staff add their account of it.
    readonly_fields = ("provider", "model", "kind", "opened_at", "closed_at", "peak", "detail")
    fields = (*readonly_fields, "note")

    @admin.display(boolean=True, description="note")
    def has_note(self, incident: Incident) -> bool:
        return bool(incident.note)

    def has_add_permission(self, request: object) -> bool:
        return False  # incidents open themselves (monitoring.incidents)
