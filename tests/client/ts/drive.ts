// What a TypeScript newcomer does with openapi/openapi.json: generate types
// (openapi-typescript), call the service through them (openapi-fetch) and drive a
// download: log in, create a download session, prepare a file, poll until PREPARED,
// download it from `download_endpoint.uri` and compare checksums, fetch a range again
// through the typed data-plane call, then keep-alive, delete, log out.
//
// Run by scripts/test.sh against the live instance it starts, compiled with
// `tsc --strict` next to the generated `schema.ts`: a spec that says less (or other)
// than the service does fails here at compile time or at run time.
// Environment: DLS_URL, DLS_USER, DLS_PASSWORD, DLS_ITEM, DLS_FILE, DLS_FILE_SHA256.

import { createHash } from "node:crypto";

import createClient from "openapi-fetch";

import type { components, paths } from "./schema.js";

type DownloadFileInfo = components["schemas"]["DownloadFileInfo"];

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

const URL = env("DLS_URL");
const USER = env("DLS_USER");
const PASSWORD = env("DLS_PASSWORD");
const ITEM = env("DLS_ITEM");
const FILE = env("DLS_FILE");
const SHA256 = env("DLS_FILE_SHA256");

function step(what: string): void {
  console.log(`  TypeScript client: ${what}`);
}

function fail(what: string): never {
  throw new Error(`FAILED: ${what}`);
}

async function main(): Promise<void> {
  step("log in (SessionCreate, HTTP Basic)");
  const anonymous = createClient<paths>({ baseUrl: URL });
  const basic = Buffer.from(`${USER}:${PASSWORD}`).toString("base64");
  const login = await anonymous.POST("/api/session", {
    headers: { Authorization: `Basic ${basic}` },
  });
  const token: string = login.data ?? fail(`SessionCreate answered ${login.response.status}`);
  const client = createClient<paths>({
    baseUrl: URL,
    headers: { "vmware-api-session-id": token },
  });

  step("create a download session (DownloadSessionCreate)");
  const created = await client.POST("/api/content/library/item/download-session", {
    body: { library_item_id: ITEM },
  });
  const session: string =
    created.data ?? fail(`DownloadSessionCreate answered ${created.response.status}`);
  const id = { path: { id: session } };
  const got = await client.GET("/api/content/library/item/download-session/{id}", {
    params: id,
  });
  const model = got.data ?? fail(`DownloadSessionGet answered ${got.response.status}`);
  if (model.state !== "ACTIVE" || model.library_item_id !== ITEM) {
    fail(`unexpected session ${JSON.stringify(model)}`);
  }

  step(`prepare ${FILE} (DownloadSessionFilePrepare)`);
  const prepared = await client.POST("/api/content/library/item/download-session/{id}/file", {
    params: { ...id, query: { action: "prepare" } },
    body: { file_name: FILE, endpoint_type: "HTTPS" },
  });
  let info: DownloadFileInfo =
    prepared.data ?? fail(`DownloadSessionFilePrepare answered ${prepared.response.status}`);

  step("poll until PREPARED (DownloadSessionFileList with file_name)");
  const deadline = Date.now() + 120_000;
  while (info.status !== "PREPARED") {
    if (info.status === "ERROR" || Date.now() > deadline) {
      fail(`${FILE} did not become PREPARED: ${JSON.stringify(info)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const listed = await client.GET("/api/content/library/item/download-session/{id}/file", {
      params: { ...id, query: { file_name: FILE } },
    });
    const one = listed.data ?? fail(`DownloadSessionFileList answered ${listed.response.status}`);
    info = Array.isArray(one) ? fail("a file_name asks for one file, not a list") : one;
  }
  if (info.checksum_info?.checksum !== SHA256) {
    fail(`checksum_info ${JSON.stringify(info.checksum_info)} is not ${SHA256}`);
  }
  const endpoint = info.download_endpoint ?? fail("a PREPARED file has a download_endpoint");

  step("download from download_endpoint.uri and compare checksums");
  const download = await fetch(endpoint.uri);
  if (download.status !== 200) {
    fail(`download answered ${download.status}`);
  }
  const digest = createHash("sha256").update(Buffer.from(await download.arrayBuffer()));
  if (digest.digest("hex") !== SHA256) {
    fail("the downloaded bytes do not have the announced SHA-256");
  }

  step("resume: the first KiB again with Range (DataDownload)");
  const [tokenPart, namePart] = new globalThis.URL(endpoint.uri).pathname.split("/").slice(-2);
  const ranged = await anonymous.GET("/cls/data/{token}/{file_name}", {
    params: {
      path: {
        token: decodeURIComponent(tokenPart ?? fail("no token in the URI")),
        file_name: decodeURIComponent(namePart ?? fail("no file name in the URI")),
      },
      header: { Range: "bytes=0-1023" },
    },
    parseAs: "arrayBuffer",
  });
  const part = ranged.data ?? fail(`ranged download answered ${ranged.response.status}`);
  if (ranged.response.status !== 206 || part.byteLength !== 1024) {
    fail(`ranged download answered ${ranged.response.status} with ${part.byteLength} bytes`);
  }

  step("keep-alive, delete, log out");
  const kept = await client.POST("/api/content/library/item/download-session/{id}", {
    params: { ...id, query: { action: "keep-alive" } },
    body: { progress: 100 },
  });
  if (kept.response.status !== 204) {
    fail(`keep-alive answered ${kept.response.status}`);
  }
  const deleted = await client.DELETE("/api/content/library/item/download-session/{id}", {
    params: id,
  });
  if (deleted.response.status !== 204) {
    fail(`DownloadSessionDelete answered ${deleted.response.status}`);
  }
  const gone = await client.GET("/api/content/library/item/download-session/{id}", {
    params: id,
  });
  if (gone.error?.error_type !== "NOT_FOUND") {
    fail(`a deleted session answered ${gone.response.status}`);
  }
  const out = await client.DELETE("/api/session");
  if (out.response.status !== 204) {
    fail(`SessionDelete answered ${out.response.status}`);
  }
  step("create -> prepare -> get -> download passed");
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
