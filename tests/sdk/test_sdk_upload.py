#!/usr/bin/env python3
"""Uploads through the official vSphere Automation SDK for Python, the way
VMware's sample helper (samples/vsphere/contentlibrary/lib/cls_api_helper.py,
upload_files) does it: create an update session with a client token, add each
file as PUSH with its size, POST the bytes to the file's upload_endpoint with
Content-Type text/ovf, complete and delete the session. Then the file is
downloaded back through a download session and its SHA-256 compared.

Run by tests/api/updates.rs::official_python_sdk_uploads with SDK_URL,
SDK_USER, SDK_PASSWORD, SDK_ITEM_ID, SDK_UPLOAD_PATH in the environment.
Exit status 0 when every check passed.
"""

import hashlib
import os
import sys
import time
import urllib.request
import uuid

import requests
from com.vmware.content.library.item.downloadsession_client import (
    File as DownloadSessionFile,
)
from com.vmware.content.library.item.updatesession_client import (
    File as UpdateSessionFile,
)
from com.vmware.content.library.item_client import (
    DownloadSession,
    DownloadSessionModel,
    TransferStatus,
    UpdateSession,
    UpdateSessionModel,
)
from com.vmware.vapi.std.errors_client import NotAllowedInCurrentState, ResourceBusy
from vmware.vapi.lib.connect import get_requests_connector
from vmware.vapi.security.session import create_session_security_context
from vmware.vapi.security.user_password import (
    create_user_password_security_context,
)
from vmware.vapi.stdlib.client.factories import StubConfigurationFactory
from com.vmware.cis_client import Session

URL = os.environ["SDK_URL"]
USER = os.environ["SDK_USER"]
PASSWORD = os.environ["SDK_PASSWORD"]
ITEM = os.environ["SDK_ITEM_ID"]
PATH = os.environ["SDK_UPLOAD_PATH"]
NAME = os.path.basename(PATH)


def connect():
    connector = get_requests_connector(session=requests.Session(), url=URL + "/api")
    connector.set_security_context(create_user_password_security_context(USER, PASSWORD))
    token = Session(StubConfigurationFactory.new_std_configuration(connector)).create()
    connector.set_security_context(create_session_security_context(token))
    return StubConfigurationFactory.new_std_configuration(connector)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload(config):
    sessions, files = UpdateSession(config), UpdateSessionFile(config)
    spec = UpdateSessionModel()
    spec.library_item_id = ITEM
    token = str(uuid.uuid4())
    sid = sessions.create(create_spec=spec, client_token=token)
    assert sessions.create(create_spec=spec, client_token=token) == sid, "idempotent create"
    try:
        sessions.create(create_spec=spec, client_token=str(uuid.uuid4()))
        raise AssertionError("a second ACTIVE session was allowed")
    except ResourceBusy:
        pass
    file_spec = files.AddSpec(
        name=NAME,
        source_type=UpdateSessionFile.SourceType.PUSH,
        size=os.path.getsize(PATH),
    )
    info = files.add(sid, file_spec)
    assert info.status == TransferStatus.WAITING_FOR_TRANSFER, info.status
    # As the sample helper: urllib with the file as the body is a POST.
    with open(PATH, "rb") as local_file:
        request = urllib.request.Request(info.upload_endpoint.uri, local_file)
        request.add_header("Cache-Control", "no-cache")
        request.add_header("Content-Length", "{0}".format(os.path.getsize(PATH)))
        request.add_header("Content-Type", "text/ovf")
        urllib.request.urlopen(request).read()
    result = files.validate(sid)
    assert not result.has_errors, result
    assert files.get(sid, NAME).status == TransferStatus.READY
    assert [f.name for f in files.list(sid)] == [NAME]
    sessions.keep_alive(sid, client_progress=100)
    sessions.complete(sid)
    assert sessions.get(sid).state == UpdateSessionModel.State.DONE
    try:
        sessions.cancel(sid)
        raise AssertionError("cancel of a DONE session was allowed")
    except NotAllowedInCurrentState:
        pass
    sessions.delete(sid)
    print("upload: ok")


def download(config):
    sessions, files = DownloadSession(config), DownloadSessionFile(config)
    spec = DownloadSessionModel()
    spec.library_item_id = ITEM
    sid = sessions.create(create_spec=spec, client_token=str(uuid.uuid4()))
    files.prepare(sid, NAME, DownloadSessionFile.EndpointType.HTTPS)
    deadline = time.monotonic() + 60
    while True:
        info = files.get(sid, NAME)
        if info.status == DownloadSessionFile.PrepareStatus.PREPARED:
            break
        assert info.status != DownloadSessionFile.PrepareStatus.ERROR, info.error_message
        assert time.monotonic() < deadline, "not PREPARED in time"
        time.sleep(0.2)
    digest, size = hashlib.sha256(), 0
    with requests.get(info.download_endpoint.uri, stream=True, timeout=60) as r:
        r.raise_for_status()
        for chunk in r.iter_content(1 << 16):
            digest.update(chunk)
            size += len(chunk)
    assert size == os.path.getsize(PATH), size
    assert digest.hexdigest() == sha256_of(PATH), "downloaded bytes differ"
    assert info.checksum_info.checksum == sha256_of(PATH)
    sessions.delete(sid)
    print("download back: ok (sha256 %s)" % digest.hexdigest())


def main():
    config = connect()
    upload(config)
    download(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
