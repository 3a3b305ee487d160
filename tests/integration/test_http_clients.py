"""Which client `http.post` uses (geventhttpclient under gevent, urllib3 otherwise), and HTTPS
with certificate verification on both."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ethhook.deliver import http
from tests.support.sockets import raw_server

CLIENTS = {"urllib3": http.post_urllib3, "gevent": http.post_gevent}


def _certificate(subject: str, key, issuer: x509.Name | None, issuer_key, ca: bool):  # noqa: ANN001
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture()
def tls_files(tmp_path: Path) -> dict[str, Path]:
    """A CA and a certificate for 127.0.0.1 it signed, as PEM files."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("EthHook test CA", ca_key, None, ca_key, ca=True)
    cert = _certificate("127.0.0.1", key, ca.subject, ca_key, ca=False)
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def read_request(sock: ssl.SSLSocket) -> bytes:
    """One HTTP request: the head, then as many body bytes as its Content-Length says."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture()
def https_url(tls_files: dict[str, Path]) -> Iterator[str]:
    """A TLS receiver on loopback answering 201 to each connection's request."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files["cert"], tls_files["key"])
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    read_request(tls)  # all of it: closing on unread bytes resets the connection
                    tls.sendall(b"HTTP/1.1 201 Created\r\ncontent-length: 6\r\n\r\nsecure")
            except OSError:  # the client refused the certificate: the handshake fails here
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    thread.join(2)
    server.close()


@pytest.mark.parametrize("name", CLIENTS)
def test_https_to_a_trusted_certificate_is_delivered(https_url, tls_files, monkeypatch, name):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files["ca"]))  # the system store, for this test
    outcome = CLIENTS[name](https_url, b"{}", {}, 2.0, 2.0, allow_private=True)
    assert (outcome.status_code, outcome.body, outcome.error) == (201, "secure", None)


@pytest.mark.parametrize("name", CLIENTS)
def test_https_to_an_untrusted_certificate_is_refused(https_url, name):
    outcome = CLIENTS[name](https_url, b"{}", {}, 2.0, 2.0, allow_private=True)
    assert outcome.status_code is None
    assert outcome.error == "request failed: CERTIFICATE_VERIFY_FAILED"


PROBE = """
import sys
{patch}
from ethhook.deliver import http
outcome = http.post(sys.argv[1], b"{{}}", {{}}, 2.0, 2.0, allow_private=True)
print(outcome.status_code, "ethhook.deliver.http.geventpost" in sys.modules)
"""


@pytest.mark.parametrize(
    ("patch", "uses_gevent"),
    [("from gevent import monkey; monkey.patch_all()", True), ("", False)],
)
def test_post_uses_geventhttpclient_only_in_a_gevent_patched_process(patch, uses_gevent):
    for url in raw_server(
        lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    ):
        done = subprocess.run(
            [sys.executable, "-c", PROBE.format(patch=patch), url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["200", str(uses_gevent)]


@pytest.mark.parametrize("name", CLIENTS)
def test_both_clients_judge_the_address_they_connect_to(monkeypatch, name):
    """A host name resolving to loopback at connect time (after a public answer at registration,
    say) is refused; with private targets allowed, loopback is reached."""
    from ethhook.deliver.http import ssrf

    hits: list[int] = []

    def handler(conn: socket.socket) -> None:
        hits.append(1)
        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    for url in raw_server(handler):
        port = int(url.split(":")[2].split("/")[0])
        monkeypatch.setattr(ssrf, "resolve", lambda host, p: [(2, 1, 6, "", ("127.0.0.1", p))])
        rebound = f"http://rebinding-{name}.test:{port}/hook"
        refused = CLIENTS[name](rebound, b"{}", {}, 1.0, 1.0)
        assert refused.status_code is None and hits == []
        assert refused.error == (
            f"connection error: refused to connect to rebinding-{name}.test: rebinding-{name}.test "
            "resolves to an address that is not allowed (not a public one); "
            "set ETHHOOK_ALLOW_PRIVATE_TARGETS=true to allow it"
        )
        allowed = CLIENTS[name](url, b"{}", {}, 1.0, 1.0, allow_private=True)
        assert allowed.status_code == 204 and hits == [1]


def test_under_gevent_requests_beyond_the_kept_connections_do_not_wait(monkeypatch):
    """More requests in flight to one host than connections kept: none waits for another's
    connection (a hanging endpoint must not stall the other endpoints on its host)."""
    import gevent.pool

    from ethhook.deliver.http import geventpost

    monkeypatch.setattr(geventpost, "POOL_SIZE", 2)
    accepted: list[int] = []

    def slow(conn: socket.socket) -> None:
        accepted.append(1)
        time.sleep(0.5)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")

    for url in raw_server(slow):
        started = time.monotonic()
        outcomes = gevent.pool.Group().map(
            lambda _: http.post_gevent(url, b"{}", {}, 1.0, 2.0, allow_private=True), range(6)
        )
        elapsed = time.monotonic() - started
        assert [o.status_code for o in outcomes] == [200] * 6
        assert elapsed < 1.0 and len(accepted) == 6
        pool = next(p for p in geventpost._pools.values() if p.port == int(url.split(":")[2][:-5]))
        assert len(pool.idle) == 2  # the other four were closed, not kept


def test_under_gevent_a_body_larger_than_the_socket_buffer_arrives_whole():
    """The first send() takes what the socket's buffer holds; the rest follows, byte for byte
    (the receiver reads only after a pause, so the buffer is full when the client sends)."""
    import hashlib

    body = bytes(range(256)) * (8 * 4096)  # 8 MiB
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(10)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(10)
            time.sleep(0.3)
            received = read_request(conn).partition(b"\r\n\r\n")[2]  # type: ignore[arg-type]
            digest = hashlib.sha256(received).hexdigest().encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 64\r\n\r\n" + digest)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    try:
        outcome = http.post_gevent(url, body, {}, 2.0, 10.0, allow_private=True)
    finally:
        thread.join(10)
        server.close()
    assert outcome.status_code == 200, outcome.error
    assert outcome.body == hashlib.sha256(body).hexdigest()
