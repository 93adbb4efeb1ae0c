"""The PIM client against misbehaving PIMs: slow trickles, huge answers, untrusted TLS."""

from __future__ import annotations

import datetime
import io
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient

from app.akeneo import MAX_BODY, PUBLIC_KEY_PATH, TOKEN_PATH, AkeneoClient
from app.errors import PimError, PimTimeout
from tests.pims import FakePim, PimUser

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
BODY = b'{"public_key": "-----BEGIN PUBLIC KEY-----"}'


class LoopbackServer:
    """A raw loopback server: `answer(connection, number)` writes each connection's answer.

    It serves one connection at a time and stops by itself after 10 s.
    """

    def __init__(
        self, answer: Callable[[socket.socket, int], None], tls: ssl.SSLContext | None = None
    ) -> None:
        self.answer, self.tls, self.connections = answer, tls, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stopped = threading.Event()
        self.end = time.monotonic() + 10
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set() and time.monotonic() < self.end:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            try:
                if self.tls:
                    connection = self.tls.wrap_socket(connection, server_side=True)
                connection.recv(65536)
                self.answer(connection, self.connections)
            except OSError:
                pass  # the client hung up, as it should
            finally:
                connection.close()

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


def trickling(byte_delay: float, tls: ssl.SSLContext | None = None) -> LoopbackServer:
    """A PIM that sends its headers at once, then its body at `byte_delay` a byte."""

    def answer(connection: socket.socket, _: int) -> None:
        connection.sendall(HEAD)
        for byte in BODY.ljust(200):
            if server.stopped.is_set() or time.monotonic() > server.end:
                break
            connection.sendall(bytes([byte]))
            time.sleep(byte_delay)

    server = LoopbackServer(answer, tls)
    return server


@pytest.fixture
def slow_pim() -> Iterator[LoopbackServer]:
    server = trickling(byte_delay=0.05)  # 200 bytes: 10 s in all, every read well in time
    yield server
    server.close()


def self_signed_tls(tmp_path: Path) -> ssl.SSLContext:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("127.0.0.1")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def test_a_pim_that_trickles_its_answer_hits_the_total_deadline(slow_pim: LoopbackServer) -> None:
    client = AkeneoClient("id", "secret", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(PimTimeout):
        client.public_key(slow_pim.url)
    # each byte came in time (0.05 s < 0.5 s read timeout), but the whole did not
    assert time.monotonic() - started < 1.5


def test_a_pim_with_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    server = trickling(byte_delay=0, tls=self_signed_tls(tmp_path))
    try:
        with pytest.raises(PimError, match="could not be reached"):
            AkeneoClient("id", "secret", timeout=2).public_key(server.url)
    finally:
        server.close()


def test_an_answer_over_the_size_cap_is_refused(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    pim.answer("POST", TOKEN_PATH, raw=b'{"access_token": "' + b"x" * MAX_BODY + b'"}')
    response = user.connect()
    assert response.status_code == 502
    assert "too large" in response.get_data(as_text=True)
    assert client.application.extensions["akeneo_store"].connections() == []


def test_no_redirect_is_followed_to_another_host(user: PimUser, pim: FakePim) -> None:
    pim.answer("GET", PUBLIC_KEY_PATH, status=302, raw=b"")
    response = user.connect()
    assert response.status_code == 502
    assert "redirect" in response.get_data(as_text=True)
    assert {r.path for r in pim.requests} == {TOKEN_PATH, PUBLIC_KEY_PATH}


def dropping(body: bytes, drop_at: int) -> LoopbackServer:
    """A PIM that sends a file, but drops the first connection after `drop_at` bytes (as a
    flaky network does)."""

    def answer(connection: socket.socket, number: int) -> None:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        connection.sendall(head.encode() + (body[:drop_at] if number == 1 else body))

    return LoopbackServer(answer)


def test_a_download_retried_after_a_dropped_connection_starts_the_file_again() -> None:
    body = bytes(range(256)) * 400  # 100 KB
    server = dropping(body, drop_at=60 * 1024)
    try:
        client = AkeneoClient("id", "secret", timeout=5, sleep=lambda seconds: None)
        file = io.BytesIO(b"kept")  # what the file held before: kept, never doubled
        file.seek(0, io.SEEK_END)
        client.send("GET", server.url, "/media", what="download", sink=file)
        assert server.connections == 2
        assert file.getvalue() == b"kept" + body  # 100 KB, not 60 + 100
    finally:
        server.close()
