"""What a newcomer does with openapi/openapi.json: generate a client
(openapi-python-client) and drive a download with it: log in, create a
download session, prepare a file, poll until PREPARED, download it from
`download_endpoint.uri` and compare checksums, fetch a range again through the
generated data-plane call, then keep-alive, delete, log out.

Run by scripts/test.sh against the live instance it starts, with the generated
package `dls_client` on PYTHONPATH. Environment: DLS_URL, DLS_USER,
DLS_PASSWORD, DLS_ITEM, DLS_FILE, DLS_FILE_SHA256.
"""

import hashlib
import os
import sys
import time
import urllib.parse

import httpx
from dls_client import AuthenticatedClient, Client
from dls_client.api.data import data_download
from dls_client.api.download_session import (
    download_session_action,
    download_session_create,
    download_session_delete,
    download_session_get,
)
from dls_client.api.download_session_file import (
    download_session_file_list,
    download_session_file_prepare,
)
from dls_client.api.session import session_create, session_delete
from dls_client.models import (
    ApiErrorBody,
    CreateSpec,
    DownloadFileInfo,
    DownloadSessionModel,
    EndpointType,
    FileAction,
    KeepAliveSpec,
    PrepareSpec,
    PrepareStatus,
    SessionAction,
    SessionState,
)

URL = os.environ["DLS_URL"]
USER = os.environ["DLS_USER"]
PASSWORD = os.environ["DLS_PASSWORD"]
ITEM = os.environ["DLS_ITEM"]
FILE = os.environ["DLS_FILE"]
SHA256 = os.environ["DLS_FILE_SHA256"]


def step(what):
    print(f"  generated client: {what}", flush=True)


def expect(value, kind, what):
    if not isinstance(value, kind):
        sys.exit(f"FAILED: {what}: expected {kind.__name__}, got {value!r}")
    return value


def main():
    step("log in (SessionCreate, HTTP Basic)")
    anonymous = Client(base_url=URL, httpx_args={"auth": (USER, PASSWORD)})
    token = expect(session_create.sync(client=anonymous), str, "SessionCreate")
    client = AuthenticatedClient(
        base_url=URL, token=token, auth_header_name="vmware-api-session-id", prefix=""
    )

    step("create a download session (DownloadSessionCreate)")
    session = expect(
        download_session_create.sync(client=client, body=CreateSpec(library_item_id=ITEM)),
        str,
        "DownloadSessionCreate",
    )
    model = expect(
        download_session_get.sync(client=client, id=session),
        DownloadSessionModel,
        "DownloadSessionGet",
    )
    assert model.state == SessionState.ACTIVE and model.library_item_id == ITEM, model

    step(f"prepare {FILE} (DownloadSessionFilePrepare)")
    info = expect(
        download_session_file_prepare.sync(
            client=client,
            id=session,
            action=FileAction.PREPARE,
            body=PrepareSpec(file_name=FILE, endpoint_type=EndpointType.HTTPS),
        ),
        DownloadFileInfo,
        "DownloadSessionFilePrepare",
    )

    step("poll until PREPARED (DownloadSessionFileList with file_name)")
    deadline = time.monotonic() + 120
    while info.status != PrepareStatus.PREPARED:
        if info.status == PrepareStatus.ERROR or time.monotonic() > deadline:
            sys.exit(f"FAILED: {FILE} did not become PREPARED: {info!r}")
        time.sleep(0.2)
        info = expect(
            download_session_file_list.sync(client=client, id=session, file_name=FILE),
            DownloadFileInfo,
            "DownloadSessionFileList",
        )
    assert info.checksum_info and info.checksum_info.checksum == SHA256, info.checksum_info

    step("download from download_endpoint.uri and compare checksums")
    digest = hashlib.sha256()
    with httpx.stream("GET", info.download_endpoint.uri, timeout=60) as r:
        if r.status_code != 200:
            sys.exit(f"FAILED: download answered {r.status_code}")
        for chunk in r.iter_bytes():
            digest.update(chunk)
    if digest.hexdigest() != SHA256:
        sys.exit(f"FAILED: downloaded sha256 {digest.hexdigest()} != {SHA256}")

    step("resume: the first KiB again with Range (DataDownload)")
    token_part, name_part = urllib.parse.urlparse(info.download_endpoint.uri).path.split("/")[-2:]
    r = data_download.sync_detailed(
        urllib.parse.unquote(token_part),
        urllib.parse.unquote(name_part),
        client=Client(base_url=URL),
        range_="bytes=0-1023",
    )
    if r.status_code != 206 or len(r.parsed.payload.read()) != 1024:
        sys.exit(f"FAILED: ranged download answered {r.status_code}")

    step("keep-alive, delete, log out")
    r = download_session_action.sync_detailed(
        client=client,
        id=session,
        action=SessionAction.KEEP_ALIVE,
        body=KeepAliveSpec(progress=100),
    )
    assert r.status_code == 204, r
    r = download_session_delete.sync_detailed(client=client, id=session)
    assert r.status_code == 204, r
    gone = download_session_get.sync(client=client, id=session)
    assert isinstance(gone, ApiErrorBody) and gone.error_type.value == "NOT_FOUND", gone
    assert session_delete.sync_detailed(client=client).status_code == 204
    print("  generated client: create -> prepare -> get -> download passed", flush=True)


if __name__ == "__main__":
    main()
