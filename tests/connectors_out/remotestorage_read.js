// Read documents back from a remoteStorage with remotestorage.js, the library remoteStorage apps
// use: node remotestorage_read.js STORAGE_ROOT TOKEN USER_ADDRESS PATH... (paths under /restitution/).
// Prints {path: {contentType, sha256, length, text}} as JSON (text: the library gave a string).
const crypto = require("crypto");
const RemoteStorage = require("remotestoragejs");

const [storageRoot, token, userAddress, ...paths] = process.argv.slice(2);
const remoteStorage = new RemoteStorage({ cache: false, logging: false });
remoteStorage.access.claim("restitution", "rw");
remoteStorage.remote.configure({
  userAddress, href: storageRoot, storageApi: "draft-dejong-remotestorage-13", token,
});
const client = remoteStorage.scope("/restitution/");

(async () => {
  const found = {};
  for (const path of paths) {
    const file = await client.getFile(path, false);
    const text = typeof file.data === "string";
    const bytes = text ? Buffer.from(file.data, "utf8") : Buffer.from(file.data);
    found[path] = {
      contentType: file.contentType, length: bytes.length, text,
      sha256: crypto.createHash("sha256").update(bytes).digest("hex"),
    };
  }
  process.stdout.write(JSON.stringify(found));
  process.exit(0);
})().catch((error) => { console.error(String(error)); process.exit(1); });
