"""Notices to a real SMTP relay (aiosmtpd on loopback) that demands STARTTLS and a login:
delivered with the right certificate and password; refused, saying why, with a wrong
password, an unknown certificate or no TLS; credentials never configured in the clear."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.api.conftest import free_port
from vigil.takedown.mail import MailError, SmtpMailer, SmtpRelay

USER, PASSWORD = "vigil-sg", "correct horse battery staple"


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the relay's), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "relay.pem", folder / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Relay:
    port: int
    cert: Path
    received: list[tuple[str | None, bytes]] = field(default_factory=list)


class _Handler:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        who = session.auth_data.login.decode() if session.authenticated else None
        self.relay.received.append((who, envelope.content))
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                  data: Any) -> AuthResult:
    ok = (isinstance(data, LoginPassword) and data.login == USER.encode()
          and data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    cert, key = _certificate(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    r = Relay(free_port(), cert)
    ctl = Controller(_Handler(r), hostname="127.0.0.1", port=r.port, tls_context=ctx,
                     require_starttls=True, auth_required=True, auth_require_tls=True,
                     authenticator=_authenticate)
    ctl.start()
    try:
        yield r
    finally:
        ctl.stop()


def _msg() -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "sg@vigil.invalid", "abuse@host.test", "notice"
    m["Message-ID"] = "<n-1@vigil.invalid>"
    m.set_content("Please remove the material at the URL below.")
    return m


def _mailer(relay: Relay, tmp_path: Path, password: str = PASSWORD, ca: bool = True,
            security: str = "starttls", user: str | None = USER) -> SmtpMailer:
    pw = tmp_path / "password"
    pw.write_text(password + "\n")
    return SmtpMailer(SmtpRelay.parse(f"127.0.0.1:{relay.port}", security, user, pw,
                                      relay.cert if ca else None), timeout=10)


def test_starttls_and_login_deliver(relay: Relay, tmp_path: Path) -> None:
    _mailer(relay, tmp_path).send(_msg())
    assert len(relay.received) == 1
    who, body = relay.received[0]
    assert who == USER and b"Please remove" in body


@pytest.mark.parametrize(("kw", "why"), [
    ({"password": "wrong"}, "SMTPAuthenticationError"),
    ({"ca": False}, "CERTIFICATE_VERIFY_FAILED"),
    ({"security": "none", "user": None}, "STARTTLS"),  # the relay demands TLS first
    ({"security": "none"}, "AUTH"),  # ...and offers no login in the clear
])
def test_refusals_say_why_and_nothing_is_delivered(relay: Relay, tmp_path: Path,
                                                   kw: dict[str, Any], why: str) -> None:
    with pytest.raises(MailError, match=why):
        _mailer(relay, tmp_path, **kw).send(_msg())
    assert relay.received == []


def test_credentials_are_never_configured_in_the_clear(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    with pytest.raises(ValueError, match="without TLS"):
        SmtpRelay.parse("mail.example.org:25", "none", USER, pw)
    with pytest.raises(ValueError, match="PASSWORD_FILE"):
        SmtpRelay.parse("mail.example.org:587", None, USER, None)
    with pytest.raises(ValueError, match="one of"):
        SmtpRelay.parse("mail.example.org:587", "ssl")
    # defaults: TLS for a relay elsewhere, plain on this machine
    assert SmtpRelay.parse("mail.example.org:587").security == "starttls"
    assert SmtpRelay.parse("127.0.0.1:2525").security == "none"
