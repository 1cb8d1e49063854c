// Runs the konnector in cozy-konnector-libs' standalone mode (no Cozy): documents are written
// by the library's stub client to ./importedData.json and files under the working directory.
//
// The stub covers the library's old client (cozy-client-js: `cozyClient.data`, `.files`) but
// its `cozyClient.new` (the cozy-client instance saveFiles uses: query, queryAll,
// collection('io.cozy.files'), save) is empty, so saveFiles / saveBills fail there. This harness
// fills `cozyClient.new` with those calls, on top of the same stub store and files, then runs
// the konnector.
//
// Usage, in a directory holding manifest.konnector and konnector-dev-config.json
// ({"fields": {"access_token": "…", "gateway_url": "http://…"}}):
//   node /path/to/standalone/run.js

process.env.NODE_ENV = process.env.NODE_ENV || 'standalone'
process.env.COZY_FIELDS =
  process.env.COZY_FIELDS || JSON.stringify({ account: 'standalone-account', folder_to_save: '.' })

const path = require('path')

const { cozyClient } = require('cozy-konnector-libs')

const FILES = 'io.cozy.files'
const stub = cozyClient // in standalone mode: the library's cozy-client-js stub

const isPending = value => value && typeof value.then === 'function' && !value.pipe

async function readAll(data) {
  if (!data || typeof data.pipe !== 'function') return data
  const chunks = []
  for await (const chunk of data) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks)
}

function selectorOf(queryDef) {
  return { ...(queryDef.selector || {}), ...(queryDef.partialFilter || {}) }
}

const files = {
  async statByPath(filePath) {
    return { data: await stub.files.statByPath(filePath) }
  },
  async createDirectoryByPath(dirPath) {
    const data = await stub.files.createDirectory({
      name: path.basename(dirPath),
      dirID: path.dirname(dirPath).replace(/^\//, '') || '.'
    })
    return { data }
  },
  async addReferencesTo() {
    return {}
  },
  async deleteFilePermanently(id) {
    await stub.files.trashById(id)
    return {}
  },
  async fetchFileContentById(doc) {
    return stub.files.downloadById(doc._id)
  }
}

Object.assign(stub.new, {
  // Folders referenced by the konnector: none outside a Cozy.
  async query(queryDef) {
    if (queryDef.doctype === FILES && queryDef.referenced) return { data: [], included: [] }
    const data = await stub.data.query({ doctype: queryDef.doctype }, { selector: selectorOf(queryDef) })
    return { data, included: [] }
  },
  async queryAll(queryDef) {
    return stub.data.query({ doctype: queryDef.doctype }, { selector: selectorOf(queryDef) })
  },
  collection(doctype) {
    if (doctype !== FILES) throw new Error(`standalone harness: no collection for ${doctype}`)
    return files
  },
  async save(doc) {
    if (doc._type !== FILES) throw new Error(`standalone harness: cannot save a ${doc._type}`)
    if (doc.data === undefined) {
      // a rename (saveFiles' shouldReplaceName)
      await stub.files.updateAttributesById(doc._id, { name: doc.name })
      return { data: doc }
    }
    // The stub writes a stream by piping it and stats the file 1 ms after the stream's 'end',
    // which can be before the bytes reach the disk (a 0-byte file, refused): give it the bytes.
    const body = await readAll(isPending(doc.data) ? await doc.data : doc.data)
    const options = {
      name: doc.name,
      dirID: doc.dirId,
      metadata: doc.metadata,
      sourceAccount: doc.sourceAccount,
      sourceAccountIdentifier: doc.sourceAccountIdentifier
    }
    const data = doc._id
      ? await stub.files.updateById(doc._id, body, options)
      : await stub.files.create(body, options)
    return { data }
  },
  async destroy(doc) {
    await stub.files.trashById(doc._id)
    return { data: doc }
  }
})

require('../src/index.js')
