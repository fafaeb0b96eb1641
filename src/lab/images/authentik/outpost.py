#!/usr/bin/python3
# The embedded outpost's forward-auth endpoints, as authentik documents them, for the
# hostctl lab: what a reverse proxy in front of a forward-auth application talks to. It
# proves the proxy's wiring (which requests reach the outpost, with which headers, and what
# the proxy does with the answers), not authentik's login: /start signs in a fixed user
# without asking anything. Python 3 stdlib only.
#
#   GET /outpost.goauthentik.io/ping           204
#   GET /outpost.goauthentik.io/auth/nginx     needs X-Original-URL; 200 with X-authentik-*
#                                              for a session cookie, else 401
#   GET /outpost.goauthentik.io/auth/caddy     need X-Forwarded-Proto, -Host and -Uri; 200
#   GET /outpost.goauthentik.io/auth/traefik   with X-authentik-* for a session cookie, else
#                                              302 to the host's /outpost.goauthentik.io/start
#   GET /outpost.goauthentik.io/start?rd=URL   302 to /callback with a one-time state
#   GET /outpost.goauthentik.io/callback       sets the session cookie, 302 to rd
#
# An application is found as authentik's outpost finds it: by X-Forwarded-Host, else Host,
# against the external hosts of the proxy providers in the blueprints (a host of a
# forward_domain provider also by its cookie_domain). Any other host: 400. A missing header
# the outpost needs: 400 naming it.
#
# In the authentik stand-in, `ak server` hands it /outpost.goauthentik.io/; standalone:
#   python3 outpost.py --blueprints DIR --listen ADDR:PORT [--user NAME]
import argparse
import glob
import hashlib
import os
import re
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

PREFIX = "/outpost.goauthentik.io"
BLUEPRINTS = "/blueprints/hostctl"
PROVIDER = "authentik_providers_proxy.proxyprovider"
DEFAULT_PORTS = {"http": 80, "https": 443}

_lock = threading.Lock()
_states = {}    # state -> (external host, rd)
_sessions = {}  # session token -> external host
user = os.environ.get("STANDIN_OUTPOST_USER", "akadmin")


def normal_host(scheme, netloc):
    """host[:port] as authentik compares it: lower case, the scheme's default port left out."""
    host, _, port = netloc.lower().rpartition(":") if re.search(r":\d+$", netloc) else (netloc.lower(), "", "")
    if port and int(port) != DEFAULT_PORTS.get(scheme):
        return f"{host}:{port}"
    return host


def scalar(value):
    value = value.split(" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def providers(directory):
    """The proxy providers of the blueprints, read line by line: the model, mode,
    external_host and cookie_domain of each list entry (plain scalars on their own lines)."""
    found = []
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        item = None  # indentation of the entries' "- "
        entry = None
        started = False
        for line in lines + [None]:
            if line is None:  # the end: the last entry is complete
                line, item = "-", 0
            if not started:
                started = re.match(r"^entries:\s*$", line) is not None
                continue
            m = re.match(r"^(\s*)- ?", line)
            if m and (item is None or len(m.group(1)) == item):
                if entry and entry.get("model") == PROVIDER and entry.get("external_host"):
                    found.append(entry)
                if item is None:
                    item = len(m.group(1))
                entry = {}
                line = line[:m.start(0)] + " " * len(m.group(0)) + line[m.end(0):]
            if entry is None:
                continue
            kv = re.match(r"^\s*(model|mode|external_host|cookie_domain):\s*(\S.*)$", line)
            if kv:
                entry.setdefault(kv.group(1), scalar(kv.group(2)))
    return found


def find_app(directory, host):
    host = (host or "").lower()
    for p in providers(directory):
        u = urlsplit(p["external_host"])
        if normal_host(u.scheme, u.netloc) == host:
            return p
    for p in providers(directory):
        domain = p.get("cookie_domain", "").lstrip(".").lower()
        name = host.split(":")[0]
        if p.get("mode") == "forward_domain" and domain and (name == domain or name.endswith("." + domain)):
            return p
    return None


def cookie_name(app):
    return "authentik_proxy_" + hashlib.sha256(app["external_host"].encode()).hexdigest()[:8]


def session_of(handler, app):
    name = cookie_name(app)
    for part in handler.headers.get("Cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            with _lock:
                return _sessions.get(value) == app["external_host"]
    return False


def identity():
    """What authentik's outpost adds to an allowed request (proxyv2 addHeaders): all of them,
    always, the meta ones too."""
    return {
        "X-authentik-username": user,
        "X-authentik-groups": "authentik Admins",
        "X-authentik-entitlements": "",
        "X-authentik-email": f"{user}@lab.invalid",
        "X-authentik-name": "lab user",
        "X-authentik-uid": hashlib.sha256(user.encode()).hexdigest(),
        "X-authentik-jwt": "lab.jwt.standin",
        "X-authentik-meta-jwks": "http://authentik.lab/application/o/standin/jwks/",
        "X-authentik-meta-outpost": "authentik Embedded Outpost",
        "X-authentik-meta-provider": "standin",
        "X-authentik-meta-app": "standin",
        "X-authentik-meta-version": "standin",
    }


def send(handler, code, headers=None, body=""):
    data = body.encode()
    handler.send_response(code)
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Type", "text/plain; charset=utf-8")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)


def handle(handler, directory=BLUEPRINTS):
    """Answers a request under /outpost.goauthentik.io/; False for any other path."""
    path, _, query = handler.path.partition("?")
    if not path.startswith(PREFIX + "/"):
        return False
    what = path[len(PREFIX):]
    if what == "/ping":
        send(handler, 204)
        return True
    host = handler.headers.get("X-Forwarded-Host") or handler.headers.get("Host")
    app = find_app(directory, host)
    if app is None:
        send(handler, 400, body=f"no app for hostname {host!r}\n")
        return True
    if what == "/auth/nginx":
        original = handler.headers.get("X-Original-URL")
        if not original or not urlsplit(original).netloc:
            send(handler, 400, body="X-Original-URL header missing or not absolute\n")
        elif session_of(handler, app):
            send(handler, 200, identity())
        else:
            send(handler, 401, body="unauthenticated\n")
    elif what in ("/auth/caddy", "/auth/traefik"):
        need = ["X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri"]
        missing = [h for h in need if not handler.headers.get(h)]
        if missing:
            send(handler, 400, body=f"missing {', '.join(missing)}\n")
        elif session_of(handler, app):
            send(handler, 200, identity())
        else:
            proto, fhost, uri = (handler.headers.get(h) for h in need)
            rd = f"{proto}://{fhost}{uri}"
            send(handler, 302, {"Location": f"{proto}://{fhost}{PREFIX}/start?rd={quote(rd, safe='')}"})
    elif what == "/start":
        rd = parse_qs(query).get("rd", [""])[0]
        u = urlsplit(rd)
        target = find_app(directory, normal_host(u.scheme, u.netloc))
        if not target or target["external_host"] != app["external_host"]:
            send(handler, 400, body=f"rd {rd!r} is not on {app['external_host']}\n")
            return True
        state = secrets.token_urlsafe(16)
        with _lock:
            _states[state] = (app["external_host"], rd)
        send(handler, 302, {"Location": f"{PREFIX}/callback?code=standin&state={state}"})
    elif what == "/callback":
        state = parse_qs(query).get("state", [""])[0]
        with _lock:
            external, rd = _states.pop(state, (None, None))
        if external != app["external_host"]:
            send(handler, 400, body="unknown state\n")
            return True
        token = secrets.token_urlsafe(24)
        with _lock:
            _sessions[token] = external
        domain = f"; Domain={app['cookie_domain']}" if app.get("mode") == "forward_domain" and app.get("cookie_domain") else ""
        send(handler, 302, {"Location": rd, "Set-Cookie": f"{cookie_name(app)}={token}; Path=/; HttpOnly; SameSite=Lax{domain}"})
    else:
        send(handler, 404, body="not found\n")
    return True


def main():
    parser = argparse.ArgumentParser(description="authentik's forward-auth endpoints, for the hostctl lab")
    parser.add_argument("--blueprints", default=BLUEPRINTS)
    parser.add_argument("--listen", default="0.0.0.0:9000")
    parser.add_argument("--user", default=user)
    args = parser.parse_args()
    globals()["user"] = args.user
    host, _, port = args.listen.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if not handle(self, args.blueprints):
                send(self, 404, body="not found\n")

        do_HEAD = do_GET

        def log_message(self, format, *a):  # noqa: A002 - the stdlib's name
            sys.stderr.write(f"{self.headers.get('Host')} {format % a}\n")

    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
