from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"

    def ready(self) -> None:
        from gateway.metrics import scrape_collector_add
        from monitoring.collectors import StateCollector

        scrape_collector_add(StateCollector())
