"""Nobody in without the key: the real server on 127.0.0.1, probed over real sockets as an attacker
would (foreign Origin, trame's public default secret, a wrong Host, a gigabyte-sized chunk header) and
in Chromium as a user would (the printed link, a reload, a second browser, a hostile page)."""

from __future__ import annotations

import asyncio
import http.server
import socketserver
import ssl
import struct
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from web_server import WebServer
from wslink_client import PUBLIC_DEFAULT_SECRET, RawWslinkClient, run_async


def _get(url: str, headers: dict | None = None, context=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def _ws_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_the_page_needs_the_printed_link(web_server):
    status, headers, body = _get(web_server.url)
    assert status == 401 and "needs its access link" in body
    status, _, body = _get(web_server.url + "index.html?secret=" + "x" * 43)
    assert status == 403 and "not this server's" in body
    status, headers, body = _get(web_server.access_url)
    assert status == 200 and '<div id="app">' in body
    cookies = [v for k, v in headers.items() if k.lower() == "set-cookie"]
    assert cookies and "HttpOnly" in cookies[0] and "SameSite=Strict" in cookies[0]


def test_every_response_forbids_framing_and_referrers(web_server):
    for url in (web_server.url, web_server.access_url, web_server.url + "breast_subtype_web/upload.js"):
        _, headers, _ = _get(url)
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_an_unknown_host_name_is_refused(web_server):
    # DNS rebinding: a hostile name resolving to 127.0.0.1 reaches the port, but not the app.
    status, _, body = _get(web_server.access_url, {"Host": f"evil.example:{web_server.port}"})
    assert status == 403 and "does not answer to this host name" in body


def test_a_foreign_origin_cannot_open_the_websocket(web_server):
    async def attempt():
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await RawWslinkClient.connect(_ws_url(web_server), Origin="http://evil.example")
        return refused.value.status

    assert run_async(attempt()) == 403


def test_trames_public_default_secret_gets_nothing(web_server):
    async def attempt():
        client = await RawWslinkClient.connect(_ws_url(web_server), Origin=web_server.url.rstrip("/"))
        try:
            hello = await client.hello(PUBLIC_DEFAULT_SECRET)
            state = await client.call("trame.state.get", [])
            report = await client.call("trame.trigger", ["bs_report_trigger", [], {}])
        finally:
            await client.close()
        return hello, state, report

    hello, state, report = run_async(attempt())
    assert hello["error"]["message"] == "Authentication failed"
    for reply in (state, report):
        assert "result" not in reply and "Unauthorized" in reply["error"]["message"]


def test_a_failed_call_sends_no_traceback_or_server_path(web_server):
    async def attempt():
        client = await RawWslinkClient.connect(_ws_url(web_server))
        try:
            hello = await client.hello(web_server.token)
            # No report yet: the download trigger fails on the server.
            reply = await client.call("trame.trigger", ["bs_report_trigger", [], {}])
        finally:
            await client.close()
        return hello, reply

    hello, reply = run_async(attempt())
    assert "result" in hello
    error = str(reply["error"])
    assert "Traceback" not in error and ".py" not in error and "/" not in error
    assert "server log" in error


@pytest.mark.parametrize("authenticated", [False, True])
def test_a_chunk_claiming_a_gigabyte_is_refused_without_allocating_it(web_server, authenticated):
    async def attempt():
        client = await RawWslinkClient.connect(_ws_url(web_server))
        try:
            if authenticated:
                assert "result" in await client.hello(web_server.token)
            before = _rss_mb(web_server.process.pid)
            # wslink's chunk header (id, offset, total size) announcing 1 GiB, then 1 byte of it.
            await client.send_raw(struct.pack("<III", 7, 0, 2**30) + b"x")
            frame = await asyncio.wait_for(client.ws.receive(), 30)
            await asyncio.sleep(0.5)
            return before, _rss_mb(web_server.process.pid), frame.type, client.ws.close_code
        finally:
            await client.close()

    before, after, frame_type, close_code = run_async(attempt())
    assert frame_type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert close_code == 1009
    assert after - before < 64


@pytest.fixture
def hostile_site():
    """A real web site on another origin (another port of 127.0.0.1), as a page the user has open."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body>hostile</body></html>")

        def log_message(self, *_):
            pass

    site = socketserver.TCPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()
    site.server_close()


def test_a_hostile_page_in_the_users_browser_cannot_open_the_websocket(browser, web_server, hostile_site):
    """Cross-site WebSocket hijacking, from a real page of another origin in Chromium."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(hostile_site + "/")
        outcome = page.evaluate(
            """(url) => new Promise((resolve) => {
                const ws = new WebSocket(url);
                ws.onopen = () => resolve("open");
                ws.onerror = () => resolve("refused");
            })""",
            _ws_url(web_server),
        )
        assert outcome == "refused"
        # Refused by this server's Origin check, not by the browser before it asked.
        assert f"Refused a request from origin '{hostile_site}'" in web_server.log()
    finally:
        context.close()


def test_the_link_opens_the_app_and_a_reload_keeps_it(page, web_server):
    # trame's client removed the token from the address bar; the cookie brings it back on reload.
    assert "secret" not in page.url
    page.reload()
    page.get_by_test_id("load-demo").wait_for()


def test_a_second_browser_is_told_the_session_is_in_use(browser, page, web_server):
    other = browser.new_context()
    try:
        second = other.new_page()
        second.goto(web_server.access_url)
        message = second.get_by_test_id("gate-message")
        assert "in use in another browser" in message.inner_text()
    finally:
        other.close()


@pytest.fixture
def tls_server(tmp_path):
    """A server with a self-signed certificate for 127.0.0.1 (made by openssl, as an admin would)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(cafile=str(cert))
    server = WebServer(
        tmp_path / "server.log", ("--tls-cert", str(cert), "--tls-key", str(key)), ssl_context=context
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_tls_serves_https_only_with_secure_cookies(tls_server):
    assert tls_server.access_url.startswith("https://127.0.0.1:")
    status, headers, _ = _get(tls_server.access_url, context=tls_server.ssl_context)
    cookies = [v for k, v in headers.items() if k.lower() == "set-cookie"]
    assert status == 200 and cookies and all("Secure" in cookie for cookie in cookies)
    with pytest.raises(OSError):  # the same port does not answer plain HTTP
        urllib.request.urlopen(tls_server.access_url.replace("https://", "http://"), timeout=5)
