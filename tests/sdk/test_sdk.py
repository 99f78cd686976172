#!/usr/bin/env python3
"""The official vSphere Automation SDK for Python (vmware-vcenter 8.0.3.0,
vapi runtime 2.52.0) against a running download-sessions instance.

Run by tests/api/jsonrpc.rs::official_python_sdk, which passes the instance
and fixture through SDK_* environment variables. The control plane is checked
first, the data plane (poll until PREPARED, download, checksum) after it, and
the clean-up (delete, logout) always. Exit status: 0 all passed, 1 a control
plane or clean-up check failed, 3 only the data plane failed.
"""

import hashlib
import os
import sys
import time
import traceback
import uuid

import requests
from com.vmware.cis_client import Session
from com.vmware.content.library.item.downloadsession_client import (
    File as DownloadSessionFile,
)
from com.vmware.content.library.item_client import (
    DownloadSession,
    DownloadSessionModel,
    File as ItemFile,
    Storage,
)
from com.vmware.content.library_client import Item, ItemModel, StorageBacking
from com.vmware.content_client import (
    Library,
    LibraryModel,
    LocalLibrary,
    SubscribedLibrary,
)
from com.vmware.vapi.std.errors_client import (
    AlreadyExists,
    ConcurrentChange,
    InvalidArgument,
    NotAllowedInCurrentState,
    NotFound,
    Unauthenticated,
    Unauthorized,
)
from vmware.vapi.lib.connect import get_requests_connector
from vmware.vapi.security.session import create_session_security_context
from vmware.vapi.security.user_password import (
    create_user_password_security_context,
)
from vmware.vapi.stdlib.client.factories import StubConfigurationFactory

URL = os.environ["SDK_URL"]
USER = os.environ["SDK_USER"]
PASSWORD = os.environ["SDK_PASSWORD"]
# A second user who manages the catalog (creates, deletes, reads storage).
ADMIN_USER = os.environ["SDK_ADMIN_USER"]
ADMIN_PASSWORD = os.environ["SDK_ADMIN_PASSWORD"]
ITEM = os.environ["SDK_ITEM_ID"]
OTHER_ITEM = os.environ["SDK_OTHER_ITEM_ID"]
FILE_NAME = os.environ["SDK_FILE_NAME"]
FILE_SHA256 = os.environ["SDK_FILE_SHA256"]
FILE_SIZE = int(os.environ["SDK_FILE_SIZE"])
PREPARE_TIMEOUT = float(os.environ.get("SDK_PREPARE_TIMEOUT", "60"))

State = DownloadSessionModel.State
Status = DownloadSessionFile.PrepareStatus
Endpoint = DownloadSessionFile.EndpointType


class Checks:
    """Runs named checks, printing each outcome, and remembers failures."""

    def __init__(self):
        self.failed = []

    def run(self, name, fn, *args):
        try:
            result = fn(*args)
        except Exception:  # report every failure, keep going where possible
            self.failed.append(name)
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
            return None
        print(f"ok   {name}", flush=True)
        return result


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def expect(error_class, fn, *args, **kwargs):
    """The call must raise exactly the SDK's `error_class`."""
    try:
        fn(*args, **kwargs)
    except error_class as e:
        check(e.messages, f"{error_class.__name__} carries messages")
        return e
    raise AssertionError(f"expected {error_class.__name__}")


def connect(user=USER, password=PASSWORD):
    connector = get_requests_connector(session=requests.Session(), url=URL + "/api")
    connector.set_security_context(
        create_user_password_security_context(user, password)
    )
    config = StubConfigurationFactory.new_std_configuration(connector)
    token = Session(config).create()
    check(isinstance(token, str) and token, "session token is a string")
    connector.set_security_context(create_session_security_context(token))
    return config, token


def whoami(config):
    info = Session(config).get()
    check(info.user == USER, f"Session.get user {info.user!r}")
    check(info.created_time is not None, "created_time")


def catalog(config):
    libraries = Library(config).list()
    check(len(libraries) == 1, f"one library: {libraries}")
    library = Library(config).get(libraries[0])
    check(library.id == libraries[0] and library.name == "lib", f"{library}")
    items = Item(config).list(libraries[0])
    check(ITEM in items and OTHER_ITEM in items, f"items {items}")
    item = Item(config).get(ITEM)
    check(item.name == "vm" and item.library_id == libraries[0], f"{item}")
    names = sorted(f.name for f in ItemFile(config).list(ITEM))
    check(FILE_NAME in names, f"item files {names}")
    info = ItemFile(config).get(ITEM, FILE_NAME)
    check(info.size == FILE_SIZE, f"item file size {info.size}")
    check(info.checksum_info.checksum == FILE_SHA256, "item file checksum")
    expect(InvalidArgument, ItemFile(config).get, ITEM, "no-such-file")
    expect(NotFound, Item(config).get, str(uuid.uuid4()))


def manage_catalog(config):
    """What VMware's samples (library_crud.py, cls_api_helper.py) and Ansible do:
    create a local library and an item, find both, read storage, delete both."""
    local = LocalLibrary(config)
    backing = StorageBacking(type=StorageBacking.Type.DATASTORE, datastore_id="datastore-12")
    spec = LibraryModel(
        name="sdk-lib",
        description="made by the SDK",
        type=LibraryModel.LibraryType.LOCAL,
        storage_backings=[backing],
    )
    token = str(uuid.uuid4())
    lib_id = local.create(create_spec=spec, client_token=token)
    check(local.create(create_spec=spec, client_token=token) == lib_id, "idempotent create")
    check(lib_id in local.list(), f"LocalLibrary.list {local.list()}")
    lib = local.get(lib_id)
    check(lib.id == lib_id and lib.name == "sdk-lib", f"{lib}")
    check(lib.type == LibraryModel.LibraryType.LOCAL, f"type {lib.type}")
    check(lib.creation_time is not None and lib.server_guid, f"{lib}")
    check(lib.publish_info is not None and lib.publish_info.published is False, "publish_info")
    check(lib.subscription_info is None, "no subscription_info")
    check(len(lib.storage_backings) == 1, f"backings {lib.storage_backings}")
    check(SubscribedLibrary(config).list() == [], "no subscribed libraries")
    found = Library(config).find(Library.FindSpec(name="SDK-LIB"))
    check(found == [lib_id], f"Library.find {found}")
    local.update(lib_id, LibraryModel(description="new description"))
    check(local.get(lib_id).version == "2", "version after update")
    expect(ConcurrentChange, local.update, lib_id, LibraryModel(description="x", version="1"))
    expect(AlreadyExists, local.create, create_spec=LibraryModel(name="SDK-lib"))
    expect(InvalidArgument, Library(config).find, Library.FindSpec())

    items = Item(config)
    item_spec = ItemModel(library_id=lib_id, name="sdk-item", description="Sample iso file", type="iso")
    item_id = items.create(create_spec=item_spec, client_token=str(uuid.uuid4()))
    # ClsApiHelper.get_item_id_by_name: find by name only.
    check(items.find(Item.FindSpec(name="SDK-ITEM")) == [item_id], "Item.find by name")
    both = Item.FindSpec(name="sdk-item", library_id=lib_id, type="ISO", cached=True)
    check(items.find(both) == [item_id], "Item.find by every property")
    item = items.get(item_id)
    check(item.name == "sdk-item" and item.library_id == lib_id, f"{item}")
    check(item.content_version == "1" and item.version == "1", f"{item}")
    check(item.cached is True and item.size == 0, f"{item}")
    expect(AlreadyExists, items.create, create_spec=ItemModel(library_id=lib_id, name="SDK-ITEM"))
    check(Storage(config).list(item_id) == [], "an empty item has no storage")

    # Storage of the imported item's files.
    storage = Storage(config)
    infos = storage.list(ITEM)
    names = sorted(i.name for i in infos)
    check(FILE_NAME in names, f"storage names {names}")
    got = storage.get(ITEM, FILE_NAME)
    check(isinstance(got, list) and len(got) == 1, f"Storage.get is a list: {got}")
    info = got[0]
    check(info.size == FILE_SIZE and info.cached, f"{info}")
    check(info.checksum_info.checksum == FILE_SHA256, "storage checksum")
    check(info.storage_backing.type == StorageBacking.Type.OTHER, f"{info.storage_backing}")
    check(info.storage_uris == [], f"a local store discloses no path: {info.storage_uris}")
    expect(NotFound, storage.get, ITEM, "no-such-file")

    items.delete(item_id)
    expect(NotFound, items.get, item_id)
    local.delete(library_id=lib_id)
    expect(NotFound, local.get, lib_id)
    check(Library(config).find(Library.FindSpec(name="sdk-lib")) == [], "gone from find")


def create(sessions, item, client_token=None):
    return sessions.create(
        create_spec=DownloadSessionModel(library_item_id=item),
        client_token=client_token,
    )


def session_basics(sessions, files, sid):
    model = sessions.get(sid)
    check(model.state == State.ACTIVE, f"state {model.state}")
    check(model.library_item_id == ITEM, f"item {model.library_item_id}")
    check(model.client_progress == 0, f"progress {model.client_progress}")
    check(model.expiration_time is not None, "expiration_time")
    names = [f.name for f in files.list(sid)]
    check(FILE_NAME in names, f"session files {names}")
    info = files.get(sid, FILE_NAME)
    check(info.name == FILE_NAME and info.status is not None, f"{info}")


def idempotent_create(sessions):
    token = str(uuid.uuid4())
    a = create(sessions, ITEM, token)
    b = create(sessions, ITEM, token)
    check(a == b, f"same client_token, same id: {a} {b}")
    return a


def keep_alive(sessions, sid, progress):
    sessions.keep_alive(sid, progress=progress)
    got = sessions.get(sid).client_progress
    check(got == progress, f"progress {got} after keep_alive({progress})")
    sessions.keep_alive(sid)


def listing(sessions, ids_for_item, other):
    everything = set(sessions.list())
    check(set(ids_for_item) | {other} <= everything, f"list {everything}")
    for_item = set(sessions.list(library_item_id=ITEM))
    check(for_item == set(ids_for_item), f"list(item) {for_item}")
    check(other not in for_item, "filter excludes other items")


def cancel(sessions):
    sid = create(sessions, ITEM)
    sessions.cancel(sid)
    check(sessions.get(sid).state == State.CANCELED, "CANCELED")
    expect(NotAllowedInCurrentState, sessions.cancel, sid)
    expect(NotAllowedInCurrentState, sessions.keep_alive, sid)
    return sid


def fail(sessions):
    sid = create(sessions, ITEM)
    sessions.fail(sid, "client could not write file")
    model = sessions.get(sid)
    check(model.state == State.ERROR, f"state {model.state}")
    text = model.error_message.default_message
    check("client could not write file" in text, f"error_message {text!r}")
    return sid


def errors(sessions, files, sid):
    expect(InvalidArgument, files.prepare, sid, "no-such-file")
    expect(InvalidArgument, files.get, sid, "no-such-file")
    expect(Unauthorized, files.prepare, sid, FILE_NAME, Endpoint.DIRECT)
    expect(NotFound, sessions.get, str(uuid.uuid4()))
    expect(NotFound, create, sessions, str(uuid.uuid4()))


def delete(sessions, sid):
    sessions.delete(sid)
    expect(NotFound, sessions.get, sid)
    expect(NotFound, sessions.delete, sid)


def prepare(files, sid):
    info = files.prepare(sid, FILE_NAME, Endpoint.HTTPS)
    check(
        info.status in (Status.PREPARE_REQUESTED, Status.PREPARING, Status.PREPARED),
        f"status after prepare {info.status}",
    )


def wait_prepared(files, sid):
    deadline = time.monotonic() + PREPARE_TIMEOUT
    while True:
        info = files.get(sid, FILE_NAME)
        if info.status == Status.PREPARED:
            return info
        check(info.status != Status.ERROR, f"prepare failed: {info.error_message}")
        check(
            time.monotonic() < deadline,
            f"not PREPARED after {PREPARE_TIMEOUT:.0f}s (status {info.status})",
        )
        time.sleep(0.2)


def download(info, token):
    check(info.size == FILE_SIZE, f"size {info.size}")
    check(str(info.checksum_info.algorithm) == "SHA256", "SHA256 checksum")
    check(info.checksum_info.checksum == FILE_SHA256, "prepared checksum")
    uri = info.download_endpoint.uri
    digest, size = hashlib.sha256(), 0
    with requests.get(
        uri, headers={"vmware-api-session-id": token}, stream=True, timeout=60
    ) as r:
        r.raise_for_status()
        for chunk in r.iter_content(1 << 16):
            digest.update(chunk)
            size += len(chunk)
    check(size == FILE_SIZE, f"downloaded {size} bytes")
    check(digest.hexdigest() == FILE_SHA256, "downloaded bytes match the checksum")


def logout(config):
    Session(config).delete()
    expect(Unauthenticated, Session(config).get)


def main():
    control, data = Checks(), Checks()
    login = control.run("login (user_pass -> session_id)", connect)
    if login is None:
        return 1
    config, token = login
    sessions, files = DownloadSession(config), DownloadSessionFile(config)

    # Control plane.
    control.run("cis.session get", whoami, config)
    control.run("catalog: library, item, item file", catalog, config)
    admin = control.run("login of the catalog admin", connect, ADMIN_USER, ADMIN_PASSWORD)
    if admin is not None:
        control.run(
            "local library and item: create, find, storage, delete",
            manage_catalog,
            admin[0],
        )
        control.run("logout of the catalog admin", logout, admin[0])
    sid = control.run("download_session create", create, sessions, ITEM)
    if sid is None:
        return 1
    control.run("get and file list", session_basics, sessions, files, sid)
    twin = control.run("create with client_token is idempotent", idempotent_create, sessions)
    other = control.run("create for another item", create, sessions, OTHER_ITEM)
    control.run("keep_alive with progress", keep_alive, sessions, sid, 40)
    control.run("list with and without item filter", listing, sessions, [sid, twin], other)
    canceled = control.run("cancel", cancel, sessions)
    failed = control.run("fail", fail, sessions)
    control.run("NotFound / InvalidArgument / Unauthorized", errors, sessions, files, sid)
    for scratch in (twin, other, canceled, failed):
        if scratch is not None:
            control.run(f"delete {scratch}, then NotFound", delete, sessions, scratch)
    control.run("prepare (HTTPS)", prepare, files, sid)

    # Data plane: prepared by the workers, served at the endpoint URI.
    info = data.run("poll until PREPARED", wait_prepared, files, sid)
    if info is not None:
        data.run("download from the endpoint with checksum check", download, info, token)
        data.run("keep_alive(progress=100)", keep_alive, sessions, sid, 100)

    # Clean-up, whatever happened above.
    control.run("delete, then NotFound", delete, sessions, sid)
    control.run("logout, then Unauthenticated", logout, config)

    print()
    if control.failed:
        print(f"CONTROL PLANE FAILED: {control.failed}")
    else:
        print("CONTROL PLANE OK")
    if data.failed:
        print(f"DATA PLANE FAILED: {data.failed}")
    else:
        print("DATA PLANE OK")
    if control.failed:
        return 1
    return 3 if data.failed else 0


if __name__ == "__main__":
    sys.exit(main())
