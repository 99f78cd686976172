"""Schemathesis hooks for the fuzzing step of scripts/test.sh.

Two things a schema alone cannot give the fuzzer: a login that survives the
fuzzed logout operations (the token is fetched again after a 401), and real
ids. Random ids only ever reach NOT_FOUND, so half of the generated cases get
the imported library, item and file, a fresh download session, or a real
download endpoint (`/cls/data/...`, so Range and If-Range meet real bytes) swapped in;
update sessions are made on scratch items, and upload URIs (`/cls/upload/...`) are
those of a PUSH file just added; the rest of each case (bodies, progress, messages,
and half the time file names)
stays fuzzed. Deletes of libraries and items get a scratch library or item made
for the case (also when stateful testing would delete the imported ones through
links it infers), so that those stay for the rest of the run (and for the
generated clients driven after it).

The token goes in through this hook, not `st run -H`: a header given on the
command line wins over the hook's, and would stay dead after a fuzzed logout.

Environment: DLS_FUZZ_URL, DLS_FUZZ_TOKEN, DLS_FUZZ_USER, DLS_FUZZ_PASSWORD,
DLS_FUZZ_LIBRARY, DLS_FUZZ_ITEM, DLS_FUZZ_FILE (set by scripts/test.sh).
"""

import base64
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import schemathesis
from hypothesis import strategies as st

URL = os.environ["DLS_FUZZ_URL"]
USER = os.environ["DLS_FUZZ_USER"]
PASSWORD = os.environ["DLS_FUZZ_PASSWORD"]
LIBRARY = os.environ["DLS_FUZZ_LIBRARY"]
ITEM = os.environ["DLS_FUZZ_ITEM"]
FILE = os.environ["DLS_FUZZ_FILE"]
SESSION_HEADER = "vmware-api-session-id"

# The token scripts/test.sh logged in with (curl); replaced after each 401.
_token = os.environ.get("DLS_FUZZ_TOKEN") or None
_first = _token


def _request(method, path, headers, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method, headers=headers)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def login():
    global _token
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    _token = _request("POST", "/api/session", {"Authorization": f"Basic {basic}"})
    return _token


def _call(method, path, body=None):
    """A request as the fuzzing user, logging in again once after a 401
    (a fuzzed logout may have ended the token)."""
    for attempt in range(2):
        try:
            return _request(method, path, {SESSION_HEADER: _token or login()}, body)
        except urllib.error.HTTPError as e:
            if e.code != 401 or attempt:
                raise
            login()


def new_session():
    """A fresh ACTIVE download session of the fuzzing user."""
    return _call("POST", "/api/content/library/item/download-session", {"library_item_id": ITEM})


_endpoint = None


def real_endpoint():
    """(token, file_name) of a prepared file's download URI, renewed each minute."""
    global _endpoint
    if _endpoint and time.monotonic() - _endpoint[2] < 60:
        return _endpoint[:2]
    session = new_session()
    files = f"/api/content/library/item/download-session/{session}/file"
    info = _call("POST", files + "?action=prepare", {"file_name": FILE})
    deadline = time.monotonic() + 60
    while info["status"] != "PREPARED":
        if info["status"] == "ERROR" or time.monotonic() > deadline:
            raise RuntimeError(f"{FILE} did not become PREPARED: {info}")
        time.sleep(0.1)
        info = _call("GET", files + "?file_name=" + urllib.parse.quote(FILE))
    parts = urllib.parse.urlparse(info["download_endpoint"]["uri"]).path.split("/")
    token, name = (urllib.parse.unquote(p) for p in parts[-2:])
    _endpoint = (token, name, time.monotonic())
    return token, name


@schemathesis.auth()
class Login:
    """The fuzzing user's token on every request; fetched again after a 401
    (a fuzzed logout ends it)."""

    def get(self, case, ctx):
        global _first
        if _first:
            token, _first = _first, None
            return token
        return login()

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers[SESSION_HEADER] = data
        # The login operations take Basic credentials: the real ones, so that
        # they succeed (the fuzzed ones would only ever answer 401).
        if any("basic_auth" in s for s in case.operation.definition.raw.get("security", [])):
            case.headers["Authorization"] = (
                "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            )


def _scratch_name():
    return f"fuzz-scratch-{time.monotonic_ns()}"


def scratch_library():
    """A library of its own for a case that deletes one."""
    return _call("POST", "/api/content/local-library", {"name": _scratch_name()})


def scratch_item():
    """An item of its own (in the imported library) for a case that deletes one."""
    return _call("POST", "/api/content/library/item", {"library_id": LIBRARY, "name": _scratch_name()})


def new_update_session():
    """A fresh ACTIVE update session, on a scratch item of its own (one update
    session may be ACTIVE per item)."""
    return _call("POST", "/api/content/library/item/update-session", {"library_item_id": scratch_item()})


def real_upload_endpoint():
    """(token, file_name) of the upload URI of a PUSH file just added to a
    fresh update session (size and checksum left open, so fuzzed bytes land)."""
    session = new_update_session()
    info = _call(
        "POST",
        f"/api/content/library/item/update-session/{session}/file?action=add",
        {"name": FILE, "source_type": "PUSH"},
    )
    parts = urllib.parse.urlparse(info["upload_endpoint"]["uri"]).path.split("/")
    token, name = (urllib.parse.unquote(p) for p in parts[-2:])
    return token, name


def _path_id(path, method):
    """Which real id the `{id}` of a path takes."""
    if re.search(r"download-?session", path):
        return new_session
    if re.search(r"update-?session", path):
        return new_update_session
    deletes = method.upper() == "DELETE"
    if "/item/" in path:
        return scratch_item if deletes else (lambda: ITEM)
    if re.search(r"/(local-|subscribed-)?library/", path):
        return scratch_library if deletes else (lambda: LIBRARY)
    return None


QUERY_IDS = {
    "library_id": lambda: LIBRARY,
    "library_item_id": lambda: ITEM,
    "download_session_id": new_session,
    "update_session_id": new_update_session,
}


def _seed(case, real_names):
    op = case.operation
    path = op.path
    if path.startswith("/cls/"):
        endpoint = real_upload_endpoint if path.startswith("/cls/upload/") else real_endpoint
        case.path_parameters["token"], case.path_parameters["file_name"] = endpoint()
        return case
    if path in ("/api", "/api/session"):
        return case
    if case.path_parameters and "id" in case.path_parameters:
        real = _path_id(path, op.method)
        if real is not None:
            # `~action=list` on a session path names an item.
            action = (case.query or {}).get("~action")
            case.path_parameters["id"] = ITEM if action == "list" else real()
    for name, real in QUERY_IDS.items():
        if case.query and name in case.query:
            case.query[name] = real()
    body = case.body
    if isinstance(body, dict):
        # Ids in the body, or in the spec it wraps (`/rest`'s envelopes).
        for target in [body] + [body.get(k) for k in ("create_spec", "update_spec", "spec")]:
            if not isinstance(target, dict):
                continue
            if "library_item_id" in target:
                target["library_item_id"] = ITEM
            if "library_id" in target:
                target["library_id"] = LIBRARY
        for key in ("file_name", "name"):
            if real_names and key in body:
                body[key] = FILE
    return case


@schemathesis.hook
def flatmap_case(ctx, case):
    # Half the cases keep their random ids; of the others, half keep random file names.
    return st.tuples(st.booleans(), st.booleans()).map(
        lambda choice: _seed(case, choice[1]) if choice[0] else case
    )


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """The last word on deletes, whatever phase made the case: stateful testing
    infers links (a library's `id` from a get into a delete), so a delete of the
    imported library or item gets a scratch one instead."""
    if case.method.upper() != "DELETE" or not case.path_parameters:
        return
    current = case.path_parameters.get("id")
    if current == ITEM:
        case.path_parameters["id"] = scratch_item()
    elif current == LIBRARY:
        case.path_parameters["id"] = scratch_library()
