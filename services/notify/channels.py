"""The ways a message reaches a citizen: e-mail over SMTP, SMS through a provider (an HTTP provider's API,
or files under a folder for a laptop). Each answers what happened in delivery-status words: sent (with the
provider's reference), a temporary failure (try again later) or a permanent one (with the reason).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Protocol

import aiosmtplib
import httpx

from services.notify.content import Rendered
from services.notify.settings import NotifySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    provider_ref: str | None = None


@dataclass(frozen=True)
class Failed:
    reason: str
    permanent: bool


Outcome = Sent | Failed


class Email:
    def __init__(self, settings: NotifySettings) -> None:
        self._settings = settings

    def message(
        self, *, message_id: uuid.UUID, to: str, rendered: Rendered, unsubscribe_url: str
    ) -> EmailMessage:
        """The same message id on every try: a resend after a crash is the same e-mail to the citizen's
        mail client, which shows it once."""
        mail = EmailMessage()
        mail["From"] = self._settings.mail_from
        mail["To"] = to
        mail["Subject"] = rendered.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{message_id}@suivi.notify>"
        mail["Auto-Submitted"] = "auto-generated"
        # One-click unsubscribe (RFC 8058): mail clients show a button that POSTs to the link.
        mail["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(rendered.text)
        mail.add_alternative(rendered.html, subtype="html")
        return mail

    async def send(
        self, *, message_id: uuid.UUID, to: str, rendered: Rendered, unsubscribe_url: str
    ) -> Outcome:
        s = self._settings
        mail = self.message(message_id=message_id, to=to, rendered=rendered, unsubscribe_url=unsubscribe_url)
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.smtp_host,
                port=s.smtp_port,
                start_tls=s.smtp_starttls,
                username=s.smtp_username,
                password=s.smtp_password,
                timeout=s.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            return Failed(
                f"the mail server refused the address ({codes})", permanent=all(c >= 500 for c in codes)
            )
        except aiosmtplib.SMTPResponseException as exc:
            return Failed(f"the mail server answered {exc.code} {exc.message}", permanent=exc.code >= 500)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Failed(
                f"cannot reach the mail server {s.smtp_host}:{s.smtp_port} ({exc})", permanent=False
            )
        return Sent(mail["Message-ID"])


class SmsProvider(Protocol):
    async def send(self, *, message_id: uuid.UUID, to: str, text: str) -> Outcome: ...


class FileSms:
    """SMS written as files (`<message id>.json`) under a folder: what a laptop has instead of a provider.
    The same message, the same file: a resend after a crash replaces it, it is not a second SMS."""

    def __init__(self, directory: Path, *, sender: str) -> None:
        self._directory, self._sender = directory, sender

    async def send(self, *, message_id: uuid.UUID, to: str, text: str) -> Outcome:
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            path = self._directory / f"{message_id}.json"
            partial = path.with_suffix(".partial")
            partial.write_text(
                json.dumps({"from": self._sender, "to": to, "text": text}, ensure_ascii=False),
                encoding="utf-8",
            )
            os.replace(partial, path)
        except OSError as exc:
            return Failed(f"cannot write the SMS under {self._directory} ({exc})", permanent=False)
        return Sent(str(message_id))


class HttpSms:
    """An SMS provider's HTTP API: a JSON POST with a bearer token, our message id as the provider's
    idempotency key, and where to report delivery (`POST /v1/sms/status` on notify)."""

    def __init__(self, client: httpx.AsyncClient, settings: NotifySettings) -> None:
        if not settings.sms_http_url:
            raise ValueError("SMS_PROVIDER=http needs SMS_HTTP_URL, the provider's sending address")
        self._client, self._settings = client, settings

    async def send(self, *, message_id: uuid.UUID, to: str, text: str) -> Outcome:
        s = self._settings
        try:
            answer = await self._client.post(
                str(s.sms_http_url),
                json={
                    "from": s.sms_sender,
                    "to": to,
                    "text": text,
                    "reference": str(message_id),
                    "status_callback": f"{s.notify_public_url.rstrip('/')}/v1/sms/status",
                },
                headers={
                    "Authorization": f"Bearer {s.sms_http_token or ''}",
                    "Idempotency-Key": str(message_id),
                },
                timeout=15,
            )
        except httpx.HTTPError as exc:
            return Failed(f"cannot reach the SMS provider ({type(exc).__name__})", permanent=False)
        if answer.is_success:
            try:
                ref = str(answer.json().get("id") or message_id)
            except ValueError:
                ref = str(message_id)
            return Sent(ref)
        permanent = 400 <= answer.status_code < 500 and answer.status_code not in (408, 429)
        return Failed(f"the SMS provider answered {answer.status_code}", permanent=permanent)


def sms_provider(settings: NotifySettings, client: httpx.AsyncClient) -> SmsProvider:
    if settings.sms_provider == "http":
        return HttpSms(client, settings)
    return FileSms(Path(settings.sms_dir), sender=settings.sms_sender)
