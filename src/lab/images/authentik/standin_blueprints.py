# The blueprint-instance part of authentik's API, as the lab's stand-in answers it (see ak):
#   GET  /api/v3/managed/blueprints/?path=<path under /blueprints>  paginated list of instances
#   POST /api/v3/managed/blueprints/<instance uuid>/apply/             apply now, answer the instance
# Both need "Authorization: Bearer <AUTHENTIK_BOOTSTRAP_TOKEN>" (authentik creates that token at
# first start; 403 otherwise, as authentik answers a bad token). An instance exists for every
# *.yaml under /blueprints (discovery); "applying" records the sha512 of the file as it is at
# that moment in last_applied_hash with status "successful". Nothing is imported: the stand-in
# cannot run authentik's importer, so it proves the role's protocol, not the blueprint's effect.
# Instances live in this process (a restart forgets them, as a fresh discovery would).
import hashlib
import hmac
import json
import os
import threading
import time
import urllib.parse
import uuid

ROOT = "/blueprints"
PREFIX = "/api/v3/managed/blueprints/"
_lock = threading.Lock()
_applied = {}  # path -> (last_applied_hash, last_applied)


def _instance(path):
    pk = str(uuid.uuid5(uuid.NAMESPACE_URL, "blueprint:" + path))
    applied_hash, applied_at = _applied.get(path, ("", None))
    return {"pk": pk, "name": path, "path": path, "context": {}, "enabled": True, "managed_models": [],
            "status": "successful" if applied_hash else "unknown", "last_applied": applied_at,
            "last_applied_hash": applied_hash, "metadata": {}, "content": ""}


def _discover():
    found = []
    for base, _dirs, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".yaml"):
                found.append(os.path.relpath(os.path.join(base, name), ROOT))
    return sorted(found)


def _authorized(headers):
    token = os.environ.get("AUTHENTIK_BOOTSTRAP_TOKEN", "")
    given = headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def handle(handler):
    """Answers the request when it is one of these endpoints; False leaves it to ak."""
    url = urllib.parse.urlsplit(handler.path)
    if not url.path.startswith(PREFIX):
        return False
    if not _authorized(handler.headers):
        handler.reply(403, json.dumps({"detail": "Token invalid/expired"}), "application/json")
        return True
    rest = url.path[len(PREFIX):]
    with _lock:
        if handler.command == "GET" and rest == "":
            wanted = urllib.parse.parse_qs(url.query).get("path")
            results = [_instance(p) for p in _discover() if not wanted or p in wanted]
            body = {"pagination": {"count": len(results), "current": 1, "total_pages": 1, "start_index": 1 if results else 0,
                                   "end_index": len(results), "next": 0, "previous": 0}, "results": results}
            handler.reply(200, json.dumps(body), "application/json")
            return True
        parts = rest.strip("/").split("/")
        if handler.command == "POST" and len(parts) == 2 and parts[1] == "apply":
            for path in _discover():
                if _instance(path)["pk"] == parts[0]:
                    with open(os.path.join(ROOT, path), "rb") as f:
                        digest = hashlib.sha512(f.read()).hexdigest()
                    _applied[path] = (digest, time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()))
                    handler.reply(200, json.dumps(_instance(path)), "application/json")
                    return True
    handler.reply(404, json.dumps({"detail": "No BlueprintInstance matches the given query."}), "application/json")
    return True
