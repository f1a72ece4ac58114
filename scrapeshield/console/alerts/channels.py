"""Sending one alert to one channel: a generic JSON webhook, a Slack-compatible webhook
(``{"text": …}``, which Slack, Mattermost and Rocket.Chat accept), or an e-mail over SMTP.
Raises ``DeliveryError`` on any failure; the job retries with backoff."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

TIMEOUT = 5.0


class DeliveryError(Exception):
    pass


def payload(alert: dict[str, Any]) -> dict[str, Any]:
    detail = alert["detail"]
    return {
        "source": "scrapeshield",
        "id": alert["dedup"],  # the same id on a retried delivery: receivers can de-duplicate
        "title": alert["title"],
        "ts": alert["ts"],
        "detail": json.loads(detail) if isinstance(detail, str) else detail,
    }


def send(kind: str, target: str, alert: dict[str, Any]) -> None:
    body = payload(alert)
    if kind == "webhook":
        _post(target, body, body["id"])
    elif kind == "slack":
        _post(target, {"text": f":rotating_light: *scrapeshield* — {body['title']}"}, body["id"])
    elif kind == "email":
        _mail(target, body)
    else:
        raise DeliveryError(f"unknown channel kind {kind!r}")


def _post(url: str, body: dict[str, Any], key: str) -> None:
    try:
        response = httpx.post(url, json=body, timeout=TIMEOUT, follow_redirects=False,
                              headers={"x-scrapeshield-alert": key})
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise DeliveryError(f"HTTP {response.status_code} from the receiver")


def _mail(target: str, body: dict[str, Any]) -> None:
    parts = urlsplit(target)
    query = parse_qs(parts.query)
    recipient = unquote(parts.path.lstrip("/"))
    sender = query.get("from", ["scrapeshield@localhost"])[0]
    message = EmailMessage()
    message["Subject"] = f"[scrapeshield] {body['title']}"
    message["From"] = sender
    message["To"] = recipient
    message["Message-ID"] = f"<{body['id'].replace(':', '.')}@scrapeshield>"
    message.set_content(f"{body['title']}\n\n{json.dumps(body, indent=2, sort_keys=True)}\n")
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    host = parts.hostname or "localhost"
    try:
        if parts.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=TIMEOUT)
        with client:
            if parts.scheme == "smtp+starttls":
                client.starttls(context=ssl.create_default_context())
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
