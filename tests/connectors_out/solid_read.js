// Read a Solid container back with @inrupt/solid-client, the library Solid apps use, logged in
// with the pod owner's client credentials through @inrupt/solid-client-authn-node:
//   node solid_read.js ISSUER CLIENT_ID CLIENT_SECRET CONTAINER
// Prints {webId, records: {url: JSON}, turtle: [url of each record's .ttl],
//         files: {url: {contentType, sha256, length}}, others: [any other member],
//         registrations: [{forClass, instanceContainer}]} (the private type index's entries).
const crypto = require("crypto");
const { Session } = require("@inrupt/solid-client-authn-node");
const sc = require("@inrupt/solid-client");

const SOLID = "http://www.w3.org/ns/solid/terms#";
const RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
const [oidcIssuer, clientId, clientSecret, container] = process.argv.slice(2);

async function members(url, fetch) {
  try {
    return sc.getContainedResourceUrlAll(await sc.getSolidDataset(url, { fetch }));
  } catch (error) {
    if (error.statusCode === 404) return [];
    throw error;
  }
}

(async () => {
  const session = new Session();
  await session.login({ oidcIssuer, clientId, clientSecret });
  if (!session.info.isLoggedIn) throw new Error("not logged in");
  const fetch = session.fetch;
  const webId = session.info.webId;
  const out = { webId, records: {}, turtle: [], files: {}, others: [], registrations: [] };
  for (const folder of await members(container, fetch)) {
    for (const url of await members(folder, fetch)) {
      if (url.endsWith(".jsonld")) {
        const file = await sc.getFile(url, { fetch });
        out.records[url] = JSON.parse(await file.text());
      } else if (url.endsWith(".ttl")) {
        out.turtle.push(url);
      } else if (url.endsWith("/files/")) {
        for (const fileUrl of await members(url, fetch)) {
          const file = await sc.getFile(fileUrl, { fetch });
          const bytes = Buffer.from(await file.arrayBuffer());
          out.files[fileUrl] = {
            contentType: sc.getContentType(file), length: bytes.length,
            sha256: crypto.createHash("sha256").update(bytes).digest("hex"),
          };
        }
      } else {
        out.others.push(url);
      }
    }
  }
  const profile = await sc.getSolidDataset(webId, { fetch });
  const index = sc.getUrl(sc.getThing(profile, webId), `${SOLID}privateTypeIndex`);
  if (index) {
    for (const thing of sc.getThingAll(await sc.getSolidDataset(index, { fetch }))) {
      if (sc.getUrlAll(thing, RDF_TYPE).includes(`${SOLID}TypeRegistration`)) {
        out.registrations.push({ forClass: sc.getUrl(thing, `${SOLID}forClass`),
                                 instanceContainer: sc.getUrl(thing, `${SOLID}instanceContainer`) });
      }
    }
  }
  await session.logout();
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
})().catch((error) => { console.error(error && error.stack || String(error)); process.exit(1); });
