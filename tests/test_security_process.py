"""Security at start-up, with real ``esquire serve`` processes: refusing a non-loopback address
without security, ``--insecure`` with its one warning line, the ``elastic`` password generated
and shown once, no secret in any log line, and HTTPS with a certificate of a test CA.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from elasticsearch import AuthenticationException, Elasticsearch

from conftest import ROOT, free_port
from service.settings import SettingsError, load_settings

pytestmark = pytest.mark.slow


class Serve:
    """One ``python -m service serve`` process, its stderr (logs and prints) in a file."""

    def __init__(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "data"
        self.port = free_port()
        self.log = tmp_path / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.tls: ssl.SSLContext | None = None  # the client's, when the server speaks HTTPS

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, *flags: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "service", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                "--log-format", "json", *flags]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("ESQUIRE_") and k != "ELASTIC_PASSWORD"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=log, env={**clean, **(env or {})})
        return self.proc

    def wait_listening(self) -> None:
        """Until the socket answers (401 or 200 alike)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=5, context=self.tls).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:  # not listening yet
                assert self.proc is not None
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {self.log.read_text()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def json_lines(self) -> list[dict[str, object]]:
        out = []
        for line in self.lines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    process = Serve(tmp_path)
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.proc.kill()
        process.proc.wait()


def test_listening_on_every_address_without_security_is_refused(serve: Serve) -> None:
    proc = serve.start("--host", "0.0.0.0")
    assert proc.wait(timeout=30) == 2
    text = serve.log.read_text()
    assert "esquire: refusing to listen on 0.0.0.0 without security" in text
    assert "--security" in text and "--insecure" in text
    assert not (serve.data_dir / "esquire.db").exists()


def test_insecure_starts_open_with_one_warning(serve: Serve) -> None:
    serve.start("--host", "0.0.0.0", "--insecure")
    serve.wait_listening()
    assert Elasticsearch(serve.url).info()["tagline"] == "You Know, for Search"
    serve.stop()
    warnings = [line for line in serve.json_lines() if line.get("level") == "warning"]
    assert [w["event"] for w in warnings] == ["security_disabled"]
    assert "without authentication" in str(warnings[0]["message"])


def test_generated_password_is_shown_once_and_kept(serve: Serve) -> None:
    serve.start("--security")
    serve.wait_listening()
    shown = [line for line in serve.lines() if "password of the elastic superuser is:" in line]
    assert len(shown) == 1
    password = shown[0].rsplit(": ", 1)[1].strip()
    assert len(password) == 20
    assert Elasticsearch(serve.url, basic_auth=("elastic", password)).security.authenticate()["username"] == "elastic"
    serve.stop()
    serve.start("--security")
    serve.wait_listening()
    assert Elasticsearch(serve.url, basic_auth=("elastic", password)).security.authenticate()["username"] == "elastic"
    serve.stop()
    text = serve.log.read_text()
    assert text.count(password) == 1  # the one line on stderr, no log line, not again at the restart
    assert not any(password in json.dumps(line) for line in serve.json_lines())


def test_no_secret_in_any_log_line(serve: Serve) -> None:
    boot, wrong, user_pw = "Boot-Secret-77", "Wrong-Secret-88", "User-Secret-99"
    serve.start("--security", "--log-level", "info", env={"ELASTIC_PASSWORD": boot})
    serve.wait_listening()
    admin = Elasticsearch(serve.url, basic_auth=("elastic", boot))
    admin.security.put_user(username="una", password=user_pw, roles=["viewer"])
    key = admin.security.create_api_key(name="k").body
    Elasticsearch(serve.url, api_key=key["encoded"]).security.authenticate()
    for client in (Elasticsearch(serve.url, basic_auth=("elastic", wrong)),
                   Elasticsearch(serve.url, api_key=(key["id"], wrong))):
        with pytest.raises(AuthenticationException):
            client.info()
    admin.security.change_password(username="una", password=wrong + "-new")
    serve.stop()
    text = serve.log.read_text()
    secrets = [boot, wrong, user_pw, key["api_key"], key["encoded"],
               base64.b64encode(f"elastic:{wrong}".encode()).decode(), "scrypt$"]
    assert [s for s in secrets if s in text] == []
    failures = [line for line in serve.json_lines() if line.get("event") == "authentication_failed"]
    assert [(f["user"], f["api_key_id"], f["remote"]) for f in failures] == \
        [("elastic", None, "127.0.0.1"), (None, key["id"], "127.0.0.1")]


# --- the settings behind it ---------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_nothing(host: str) -> None:
    assert load_settings({"host": host}, {}).security_enabled is False


@pytest.mark.parametrize("environ, message", [
    ({"ESQUIRE_HOST": "0.0.0.0"}, "refusing to listen on 0.0.0.0 without security"),
    ({"ESQUIRE_HOST": "192.168.1.20"}, "refusing to listen on 192.168.1.20 without security"),
    ({"ESQUIRE_HOST": ""}, "refusing to listen on every address without security"),
    ({"ESQUIRE_SECURITY": "true", "ESQUIRE_INSECURE": "true"}, "security and insecure contradict each other"),
    ({"ESQUIRE_SECURITY": "true", "ESQUIRE_BOOTSTRAP_PASSWORD": "abc"}, "at least 6 characters"),
])
def test_settings_refuse_an_open_network_address(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({}, environ)


def test_security_from_env_and_the_elastic_password_as_elasticsearchs_container_reads_it() -> None:
    settings = load_settings({}, {"ESQUIRE_SECURITY": "true", "ELASTIC_PASSWORD": "from-container",
                                  "ESQUIRE_HOST": "0.0.0.0"})
    assert (settings.security_enabled, settings.bootstrap_password) == (True, "from-container")
    both = load_settings({}, {"ESQUIRE_BOOTSTRAP_PASSWORD": "ours-first", "ELASTIC_PASSWORD": "theirs"})
    assert both.bootstrap_password == "ours-first"
    assert load_settings({"security": True}, {}).security_enabled is True


def test_https_with_a_certificate_the_client_trusts_by_its_ca_file(serve: Serve, tmp_path: Path) -> None:
    """``--tls-cert``/``--tls-key`` (or ESQUIRE_TLS_CERT/ESQUIRE_TLS_KEY): the official client
    connects over https with ``ca_certs``; plain HTTP on that port gets no answer, and a client
    that does not trust the CA is refused by the handshake."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    serve.tls = ssl.create_default_context(cafile=str(ca_file))
    serve.start("--security", "--tls-cert", str(cert_file), env={"ESQUIRE_TLS_KEY": str(key_file),
                                                                 "ELASTIC_PASSWORD": "tls-secret-1"})
    serve.wait_listening()
    es = Elasticsearch(serve.url, ca_certs=str(ca_file), basic_auth=("elastic", "tls-secret-1"))
    assert es.security.authenticate()["username"] == "elastic"
    es.index(index="logs", document={"n": 1}, refresh=True)
    assert es.esql.query(query="FROM logs | STATS n = COUNT(*) | LIMIT 1")["values"] == [[1]]
    with pytest.raises(OSError):  # no HTTP on an HTTPS port
        urllib.request.urlopen(f"http://127.0.0.1:{serve.port}", timeout=5)
    with pytest.raises(urllib.error.URLError) as refused:  # an unknown CA
        urllib.request.urlopen(serve.url, timeout=5, context=ssl.create_default_context())
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    serve.stop()
    started = [line for line in serve.json_lines() if line.get("event") == "started"]
    assert started and started[0]["scheme"] == "https"


def test_a_bad_certificate_or_a_key_alone_stops_the_start(serve: Serve, tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate")
    proc = serve.start("--tls-cert", str(tmp_path / "junk.pem"), "--tls-key", str(tmp_path / "junk.pem"))
    assert proc.wait(timeout=30) == 1
    assert "esquire: cannot start" in serve.log.read_text()
    proc = serve.start("--tls-cert", str(tmp_path / "junk.pem"))
    assert proc.wait(timeout=30) == 2
    assert "tls_cert and tls_key go together" in serve.log.read_text()
