"""Who may use this server, and what reaches the browser.

- **Access token**: a random secret per server (or one given by ``--token`` / ``BREAST_SUBTYPE_WEB_TOKEN``).
  The link printed at start carries it as ``?secret=``, which trame's client reads (and strips from the
  address bar) and presents in its WebSocket hello; wslink refuses every call from a client whose hello
  failed. The page remembers it in an HttpOnly, SameSite=Strict cookie so a reload keeps working.
- **Host and Origin**: every request must name one of this server's host names (DNS rebinding), and a
  request carrying a foreign ``Origin`` is refused, so a hostile page open in the radiologist's own browser
  can neither open the WebSocket (cross-site WebSocket hijacking) nor read the page.
- **Headers**: a Content-Security-Policy with ``frame-ancestors 'none'``, no referrer (the link carries
  the token), no MIME sniffing.
- **One browser at a time**: a second browser is refused with a page saying so while the first is
  connected; several users each get their own server (docs/web.md, "Several users").
- **On the wire** (:class:`GuardedWsHandler`): messages larger than the upload limit are refused before
  any memory is set aside for them, and failed calls reach the browser without the Python traceback.

The aiohttp parts use its public API (middlewares, ``on_response_prepare``). The WebSocket handler is
wslink's own, given a subclass at bind time; :func:`install` refuses to start if wslink has changed
shape, rather than serve without these guards.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import logging
import re
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from BreastSubtypeLib.errors import BadInputError

logger = logging.getLogger(__name__)

TOKEN_ENV = "BREAST_SUBTYPE_WEB_TOKEN"
TOKEN_QUERY = "secret"  # the URL parameter trame's client takes its WebSocket secret from
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
MIN_TOKEN_CHARS = 16
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")
# A browser reloading the page opens its new WebSocket before the old one has quite closed.
SECOND_BROWSER_GRACE_S = 3.0
# The wslink hello and other small calls; anything bigger needs a completed hello first.
UNAUTHENTICATED_MESSAGE_BYTES = 512


def new_token() -> str:
    return secrets.token_urlsafe(32)


def check_token(token: str) -> str:
    """A user-chosen token, refused if short, or if trame's client would turn it into a number or bool."""
    if len(token) < MIN_TOKEN_CHARS or not _TOKEN_CHARS.match(token):
        raise BadInputError(
            f"The access token must be at least {MIN_TOKEN_CHARS} characters of A-Z, a-z, 0-9, '_' or '-' "
            f"(set by --token or {TOKEN_ENV})."
        )
    if token.isdigit() or token.lower() in {"true", "false", "null", "undefined"}:
        raise BadInputError(f"The access token must not be a number or a keyword (--token or {TOKEN_ENV}).")
    return token


def _host_name(host_header: str) -> str:
    """``example.org:8080`` -> ``example.org``; ``[::1]:80`` -> ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def server_host_names(bind_host: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The host names browsers may use for this server: loopback, the bound address, and ``--allow-host``."""
    names = set(LOOPBACK_HOSTS) if bind_host in LOOPBACK_HOSTS | WILDCARD_HOSTS else set()
    if bind_host in WILDCARD_HOSTS:
        names |= {socket.gethostname(), socket.getfqdn()}
    else:
        names.add(bind_host)
    names |= set(extra)
    return frozenset(name.lower() for name in names if name)


def normalise_origin(origin: str) -> str:
    """``HTTPS://Host:443/`` -> ``https://host``: browsers omit a scheme's default port in Origin."""
    origin = origin.strip().lower().rstrip("/")
    for scheme, port in (("https://", ":443"), ("http://", ":80")):
        if origin.startswith(scheme) and origin.endswith(port):
            return origin[: -len(port)]
    return origin


@dataclass(frozen=True)
class AccessPolicy:
    token: str
    host_names: frozenset[str]
    extra_origins: frozenset[str] = frozenset()  # e.g. the page of a launcher on another port
    tls: bool = False
    max_message_bytes: int = 512 * 2**20
    cookie_suffix: str = field(init=False)

    def __post_init__(self) -> None:
        # Cookies are shared by every port of a host: name them after this server's token.
        object.__setattr__(self, "cookie_suffix", hashlib.sha256(self.token.encode()).hexdigest()[:12])

    @property
    def token_cookie(self) -> str:
        return f"breast_subtype_token_{self.cookie_suffix}"

    @property
    def browser_cookie(self) -> str:
        return f"breast_subtype_browser_{self.cookie_suffix}"

    def token_matches(self, candidate) -> bool:
        return isinstance(candidate, str) and hmac.compare_digest(candidate.encode(), self.token.encode())

    def host_allowed(self, host_header: str | None) -> bool:
        return bool(host_header) and _host_name(host_header) in self.host_names

    def origin_allowed(self, origin: str, host_header: str | None) -> bool:
        """Same origin as the page's host, or one named by ``--allow-origin``; ``null`` never."""
        origin = normalise_origin(origin)
        if origin in {normalise_origin(extra) for extra in self.extra_origins}:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(host_header) and parts.netloc == host_header.lower()


class OneBrowser:
    """The browsers holding an authenticated connection; a second one is refused while the first stays.

    A browser is known by a random cookie; a client without it (a script, or a page served elsewhere)
    counts as a browser of its own.
    """

    def __init__(self) -> None:
        self._browser_of: dict[str, str] = {}  # connected client id -> browser id
        self._authenticated: dict[str, str] = {}  # authenticated client id -> browser id

    def connected(self, client_id: str, browser_id: str | None) -> None:
        self._browser_of[client_id] = browser_id or f"anonymous-{client_id}"

    def closed(self, client_id: str) -> None:
        self._browser_of.pop(client_id, None)
        self._authenticated.pop(client_id, None)

    def in_use_by_another(self, browser_id: str | None) -> bool:
        return any(browser != browser_id for browser in self._authenticated.values())

    def authenticate(self, client_id: str) -> bool:
        browser = self._browser_of.get(client_id)
        if self.in_use_by_another(browser):
            logger.warning("Refused a second browser while another one is connected.")
            return False
        self._authenticated[client_id] = browser
        return True

    async def wait_until_free(self, browser_id: str | None, grace_s: float = SECOND_BROWSER_GRACE_S) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while self.in_use_by_another(browser_id):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.1)
        return True


# ---- HTTP: pages, headers, the index gate ---------------------------------------------------------


def inline_script_hashes(index_html: Path) -> tuple[str, ...]:
    """CSP hashes of the inline scripts of trame's index.html (its loading-screen fetch)."""
    text = index_html.read_text(encoding="utf-8")
    bodies = re.findall(r"<script>(.*?)</script>", text, flags=re.DOTALL)
    return tuple(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in bodies
    )


def content_security_policy(host_header: str | None, script_hashes: tuple[str, ...]) -> str:
    sockets = f" ws://{host_header} wss://{host_header}" if host_header else ""
    # 'unsafe-eval': Vue compiles trame's templates in the browser. Styles are inline (Vuetify).
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'unsafe-eval' {' '.join(script_hashes)}".strip(),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            f"connect-src 'self'{sockets}",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _page(status: int, title: str, text: str):
    from aiohttp import web

    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>BreastSubtype: {html.escape(title)}</title></head>"
        "<body style='font-family: sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.5'>"
        f"<h1 style='font-size: 1.4em'>{html.escape(title)}</h1><p data-testid='gate-message'>"
        f"{html.escape(text, quote=False)}</p></body></html>"
    )
    return web.Response(
        status=status, text=body, content_type="text/html", headers={"Cache-Control": "no-store"}
    )


NEEDS_LINK = (
    "This server needs its access link: open the address printed in the terminal where "
    "'breast-subtype web' started (it ends in ?secret=...)."
)
WRONG_TOKEN = (
    "The access token in this link is not this server's. Use the link printed when the server started."
)
IN_USE = (
    "This BreastSubtype session is in use in another browser. Each user needs their own session: "
    "start your own server, or ask for your own link if the server is shared (docs/web.md, 'Several users')."
)


def http_guard(policy: AccessPolicy, browsers: OneBrowser):
    """The aiohttp middleware: Host and Origin for every request, the token and one browser for the page."""
    from aiohttp import web

    @web.middleware
    async def guard(request, handler):
        if not policy.host_allowed(request.headers.get("Host")):
            logger.warning("Refused a request for host %r", request.headers.get("Host"))
            return _page(403, "Unknown host", "This server does not answer to this host name.")
        origin = request.headers.get("Origin")
        if origin is not None and not policy.origin_allowed(origin, request.headers.get("Host")):
            logger.warning("Refused a request from origin %r", origin)
            return _page(403, "Foreign origin", "Requests from other web sites are refused.")
        if request.method == "GET" and request.path in ("/", "/index.html"):
            return await _index(request, handler)
        return await handler(request)

    async def _index(request, handler):
        given = request.query.get(TOKEN_QUERY)
        if given is None:
            if policy.token_matches(request.cookies.get(policy.token_cookie)):
                # A reload: trame's client takes the secret from the URL only.
                raise web.HTTPFound(f"index.html?{TOKEN_QUERY}={policy.token}")
            return _page(401, "Access link needed", NEEDS_LINK)
        if not policy.token_matches(given):
            return _page(403, "Wrong access token", WRONG_TOKEN)
        browser = request.cookies.get(policy.browser_cookie) or secrets.token_urlsafe(16)
        if not await browsers.wait_until_free(browser):
            return _page(409, "Session in use", IN_USE)
        response = await handler(request)
        for name, value in ((policy.token_cookie, policy.token), (policy.browser_cookie, browser)):
            response.set_cookie(name, value, httponly=True, samesite="Strict", secure=policy.tls, path="/")
        response.headers["Cache-Control"] = "no-store"
        return response

    return guard


def response_headers(script_hashes: tuple[str, ...]):
    async def add_headers(request, response) -> None:
        headers = response.headers
        headers["Content-Security-Policy"] = content_security_policy(
            request.headers.get("Host"), script_hashes
        )
        headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"  # the page's URL carries the token
        headers["Cross-Origin-Opener-Policy"] = "same-origin"

    return add_headers


# ---- WebSocket: wslink's handler with our limits ---------------------------------------------------


def _guarded_handler_class():
    from wslink.backends.aiohttp import AioHttpWsHandler
    from wslink.chunking import HEADER_LENGTH, MESSAGE_SIZE_LOCATION, StreamUnChunker
    from wslink.protocol import EXCEPTION_ERROR

    class CappedUnChunker(StreamUnChunker):
        """wslink's streaming un-chunker (memory grows with the bytes received, not the size a header
        claims), refusing any message whose declared size is over the limit."""

        def __init__(self, limit_bytes: int, ceiling_bytes: int) -> None:
            super().__init__()
            self.limit_bytes = limit_bytes
            self.ceiling_bytes = ceiling_bytes

        def set_max_message_size(self, size: int) -> None:
            # wslink raises the limit to 4 GB once a client is authenticated; ours stays the upload limit.
            self.limit_bytes = min(int(size), self.ceiling_bytes)

        def process_chunk(self, chunk: bytes):
            # wslink's chunk header: message id, offset, total size (little-endian uint32 each).
            total_size = int.from_bytes(chunk[MESSAGE_SIZE_LOCATION:HEADER_LENGTH], "little")
            if total_size > self.limit_bytes:
                raise ValueError(f"message of {total_size} bytes refused (limit {self.limit_bytes})")
            return super().process_chunk(chunk)

    class GuardedWsHandler(AioHttpWsHandler):
        """wslink's aiohttp handler with the token compared in constant time, one browser at a time,
        capped messages and tracebacks kept in the server log."""

        policy: AccessPolicy
        browsers: OneBrowser

        async def onConnect(self, request, client_id):
            await super().onConnect(request, client_id)
            self.unchunkers[client_id] = CappedUnChunker(
                UNAUTHENTICATED_MESSAGE_BYTES, self.policy.max_message_bytes
            )
            self.browsers.connected(client_id, request.cookies.get(self.policy.browser_cookie))

        async def onMessage(self, is_binary, msg, client_id):
            try:
                await super().onMessage(is_binary, msg, client_id)
            except ValueError as exc:  # an oversize or malformed message: drop this client
                logger.warning("Closing client %s: %s", client_id, exc)
                await self.connections[client_id].close(code=1009, message=b"message too big")

        async def onClose(self, client_id):
            self.browsers.closed(client_id)
            await super().onClose(client_id)

        async def validateToken(self, token, client_id):
            return self.policy.token_matches(token) and self.browsers.authenticate(client_id)

        async def sendWrappedError(self, rpcid, code, message, data=None, client_id=None):
            if code == EXCEPTION_ERROR:  # wslink would send the exception and its traceback
                message, data = "Internal error: the details are in the server log.", None
            await super().sendWrappedError(rpcid, code, message, data, client_id=client_id)

    return GuardedWsHandler


def install(server, policy: AccessPolicy, index_html: Path) -> OneBrowser:
    """Guard a trame server before it starts: call once, before ``server.start``."""
    browsers = OneBrowser()
    script_hashes = inline_script_hashes(index_html)
    handler_class = _guarded_handler_class()

    def on_bind(wslink_server) -> None:
        from wslink.backends.aiohttp import AioHttpWsHandler

        handlers = getattr(wslink_server, "_ws_handlers", None)
        if not handlers or not all(type(h) is AioHttpWsHandler for h in handlers):
            raise RuntimeError(
                "This wslink version is not supported: the WebSocket guards cannot be installed."
            )
        for handler in handlers:
            handler.__class__ = handler_class
            handler.policy, handler.browsers = policy, browsers
        wslink_server.app.middlewares.append(http_guard(policy, browsers))
        wslink_server.app.on_response_prepare.append(response_headers(script_hashes))

    server.controller.on_server_bind.add(on_bind)
    return browsers
