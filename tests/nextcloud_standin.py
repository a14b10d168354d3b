"""A local stand-in for Nextcloud's OCS provisioning API, answering from Nextcloud's own
published OpenAPI description (``tests/nextcloud/provisioning_api.openapi.json``, the whole
file: every path and schema of the provisioning API; its source commit and license:
``tests/nextcloud/README.md``).

Nextcloud cannot be installed here (CONNECTORS.md). This server keeps a few users in
memory and, for every request, checks it against the description before answering:

- the path and the method are an operation of the description;
- every parameter (path, query, header: ``OCS-APIRequest``) is given where required, and
  its value fits its schema; no query parameter the operation does not name;
- the request is authenticated as the operation's ``security`` asks (basic or bearer);
- a body only where the operation takes one, fitting its schema;
- it accepts ``application/json``, the content type the description answers with.

Requests are routed through every path of the description (literal paths before
templated ones, so ``users/details`` is not taken for a user called "details", nor
``users/{userId}/disable`` for ``users/{userId}/{collectionName}``). It answers the
operations the connector uses (by ``operationId``: ``users-get-users-details``,
``users-get-user``, ``users-disable-user``, ``users-enable-user``,
``users-delete-user``); any other operation of the description is valid but not kept
here, so it is recorded as a violation and answered 501.

Every answer it gives is validated against the description's schema for that operation
and status; an error status the description does not list (Nextcloud's 400, 401, 404,
503) is validated against the OCS envelope (``ocs.meta``: ``OCSMeta``) that the
description uses for its documented errors. Whatever does not fit is kept in
:attr:`StandIn.violations`, and the tests require that list to be empty.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema

SPEC_PATH = Path(__file__).parent / "nextcloud" / "provisioning_api.openapi.json"

# The operations of the description this stand-in answers (the connector's).
ANSWERED = frozenset(
    {
        "users-get-users-details",
        "users-get-user",
        "users-disable-user",
        "users-enable-user",
        "users-delete-user",
    }
)


def load_spec() -> dict:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def to_json_schema(node, spec: dict):
    """An OpenAPI 3.0 schema as JSON Schema: ``$ref`` to components inlined, ``nullable``
    turned into a ``null`` type."""
    if isinstance(node, list):
        return [to_json_schema(n, spec) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return to_json_schema(target, spec)
    out = {k: to_json_schema(v, spec) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def error_envelope(spec: dict) -> dict:
    """The OCS envelope of the description's documented errors: meta (OCSMeta) and any data."""
    return {
        "type": "object",
        "required": ["ocs"],
        "properties": {
            "ocs": {
                "type": "object",
                "required": ["meta", "data"],
                "properties": {
                    "meta": to_json_schema({"$ref": "#/components/schemas/OCSMeta"}, spec),
                    "data": {},
                },
            }
        },
    }


def user_details(uid: str, *, enabled=True, last_login_ms=0, email=None) -> dict:
    """A user as Nextcloud describes one (every field the description requires)."""
    return {
        "additional_mail": [],
        "address": "",
        "backend": "Database",
        "backendCapabilities": {"setDisplayName": True, "setPassword": True},
        "biography": "",
        "display-name": uid.title(),
        "displayname": uid.title(),
        "email": email,
        "enabled": enabled,
        "fediverse": "",
        "groups": ["users"],
        "headline": "",
        "id": uid,
        "language": "fr",
        "lastLogin": last_login_ms,
        "locale": "fr_FR",
        "manager": "",
        "notify_email": None,
        "organisation": "",
        "phone": "",
        "profile_enabled": "1",
        "pronouns": "",
        "quota": {"free": 1024, "used": 0, "total": 1024, "relative": 0, "quota": "none"},
        "role": "",
        "subadmin": [],
        "twitter": "",
        "website": "",
    }


class StandIn:
    def __init__(self, admin: str = "helpdesk", app_password: str = "app-password"):
        self.spec = load_spec()
        self.admin, self.app_password = admin, app_password
        self.users: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.violations: list[str] = []
        self.maintenance = False  # answer 503 like Nextcloud in maintenance mode
        self.lock = threading.Lock()
        self.routes = []
        for template, item in self.spec["paths"].items():
            rx = re.escape(template)
            for name in re.findall(r"\{(\w+)\}", template):
                rx = rx.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)")
            self.routes.append((template.count("{"), re.compile(rx + "$"), template, item))
        # literal paths first (users/details), then the fewest parameters
        # (users/{userId}/disable before users/{userId}/{collectionName})
        self.routes.sort(key=lambda r: r[0])
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def add(self, uid: str, **kw) -> dict:
        self.users[uid] = user_details(uid, **kw)
        return self.users[uid]

    # --- checking requests and answers against the description -------------------------

    def operation(self, method: str, path: str):
        for _n, rx, template, item in self.routes:
            m = rx.match(path)
            if m and method.lower() in item:
                return (
                    template,
                    item[method.lower()],
                    {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()},
                )
        return None, None, {}

    def check_request(self, method, path, query, headers, body) -> tuple[str | None, dict, dict]:
        template, op, path_params = self.operation(method, path)
        where = f"{method} {path}"
        if op is None:
            self.violations.append(f"{where}: no such operation in the description")
            return None, {}, {}
        given_query = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
        named = set()
        for p in op.get("parameters", []):
            named.add((p["in"], p["name"].lower()))
            if p["in"] == "path":
                value = path_params.get(p["name"])
            elif p["in"] == "query":
                value = given_query.get(p["name"])
            elif p["in"] == "header":
                value = headers.get(p["name"])
            else:
                value = None
            if value is None:
                if p.get("required"):
                    self.violations.append(f"{where}: missing {p['in']} parameter {p['name']}")
                continue
            schema = to_json_schema(p["schema"], self.spec)
            typed = _typed(value, schema)
            try:
                jsonschema.validate(typed, schema)
            except jsonschema.ValidationError as exc:
                self.violations.append(f"{where}: {p['name']}={value!r}: {exc.message}")
        for name in given_query:
            if ("query", name.lower()) not in named:
                self.violations.append(f"{where}: query parameter {name} is not in the description")
        auth = headers.get("Authorization", "")
        prefix = {"basic": "Basic ", "bearer": "Bearer "}
        schemes = self.spec["components"]["securitySchemes"]
        authenticated = any(
            all(auth.startswith(prefix[schemes[name]["scheme"]]) for name in requirement)
            for requirement in op.get("security", [])
        )
        if op.get("security") and not authenticated:
            self.violations.append(f"{where}: not authenticated as the description asks")
        accept = headers.get("Accept", "")
        if "application/json" not in accept and "*/*" not in accept:
            self.violations.append(f"{where}: does not accept application/json ({accept!r})")
        if body:
            rb = op.get("requestBody")
            if rb is None:
                self.violations.append(f"{where}: a body the operation does not take")
            else:
                schema = to_json_schema(rb["content"]["application/json"]["schema"], self.spec)
                try:
                    jsonschema.validate(json.loads(body), schema)
                except (ValueError, jsonschema.ValidationError) as exc:
                    self.violations.append(f"{where}: body: {exc}")
        elif (op.get("requestBody") or {}).get("required"):
            self.violations.append(f"{where}: the operation requires a body")
        return template, op, path_params

    def check_answer(self, where: str, op: dict | None, status: int, payload: dict) -> None:
        documented = (op or {}).get("responses", {}).get(str(status))
        if documented:
            schema = to_json_schema(documented["content"]["application/json"]["schema"], self.spec)
        else:
            schema = error_envelope(self.spec)
        try:
            jsonschema.validate(payload, schema)
        except jsonschema.ValidationError as exc:
            self.violations.append(f"answer to {where} ({status}): {exc.message}")

    # --- answering like Nextcloud --------------------------------------------------------------

    def answer(self, method, path, query, headers, body) -> tuple[int, dict]:
        template, op, params = self.check_request(method, path, query, headers, body)
        self.requests.append((method, path))
        if self.maintenance:
            return 503, _ocs(503, "failure", None, "System in maintenance mode.")
        expected = (
            "Basic " + base64.b64encode(f"{self.admin}:{self.app_password}".encode()).decode()
        )
        if headers.get("Authorization") != expected:
            return 401, _ocs(997, "failure", None, "Current user is not logged in")
        if template is None:
            return 404, _ocs(998, "failure", None, "Invalid query")
        operation = op["operationId"] if op else ""
        if operation not in ANSWERED:
            self.violations.append(f"{method} {path}: {operation} is not answered by the stand-in")
            return 501, _ocs(501, "failure", None, "Not implemented by the stand-in")
        uid = params.get("userId")
        user = self.users.get(uid) if uid else None
        if operation == "users-get-users-details":
            q = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
            offset, limit = int(q.get("offset", 0)), int(q.get("limit") or 10**6)
            ids = sorted(self.users)[offset : offset + limit]
            return 200, _ocs(200, "ok", {"users": {i: copy.deepcopy(self.users[i]) for i in ids}})
        if method == "GET":
            if user is None:
                return 404, _ocs(404, "failure", [], "User does not exist")
            return 200, _ocs(200, "ok", copy.deepcopy(user))
        if user is None:  # Nextcloud's UsersController: OCSException('', 101) -> 400
            return 400, _ocs(101, "failure", [], "")
        if operation in ("users-enable-user", "users-disable-user"):
            user["enabled"] = operation == "users-enable-user"
        elif operation == "users-delete-user":
            del self.users[uid]
        return 200, _ocs(200, "ok", [])

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with standin.lock:
                    status, payload = standin.answer(
                        self.command, parts.path, parts.query, self.headers, body
                    )
                    _t, op, _p = standin.operation(self.command, parts.path)
                    standin.check_answer(f"{self.command} {parts.path}", op, status, payload)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = do_POST = _serve

            def log_message(self, *args):
                pass

        return Handler


def _ocs(code: int, status: str, data, message: str = "OK") -> dict:
    return {
        "ocs": {"meta": {"status": status, "statuscode": code, "message": message}, "data": data}
    }


def _typed(value: str, schema: dict):
    """A parameter's text as the type its schema names (OpenAPI's simple style)."""
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    if "integer" in kinds and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value
