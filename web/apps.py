from django.apps import AppConfig


class WebConfig(AppConfig):
    """The browser pages: server-rendered templates, HTMX for partial updates, no build step."""

    name = "web"
