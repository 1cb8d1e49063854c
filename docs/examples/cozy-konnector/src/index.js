// Cozy konnector: brings the customer's own data home from a data holder's restitution gateway.
//
// The account is an OAuth account: cozy-stack runs the authorization-code flow against the
// gateway and hands the konnector `fields.access_token`. Each run:
//   1. GET /api/v1/me: the consent in force (grant id, period, datasets) and the holder's name;
//   2. for every granted dataset, GET /api/v1/datasets/{slug}/records?since=<cursor kept for it>,
//      every page, applying creations, updates and deletions to the dataset's doctype;
//   3. invoices go through saveBills, their PDFs fetched with the bearer token (Accept: application/pdf);
//   4. the cursors are kept in the account's data (saveAccountData) for the next run.
// A new consent (another grant id) reads every dataset again and drops what the gateway no
// longer gives, so records that entered or left the window are never silently missed.
// Every call honours the gateway's RateLimit headers (and Retry-After on a 429).

const { PassThrough } = require('stream')

const { BaseKonnector, log, errors, cozyClient } = require('cozy-konnector-libs')

const { BILLS, DOCTYPES, lastByKey, meta, parseRateLimit, toDocs } = require('./mapping')

const DEFAULT_GATEWAY = 'https://gateway.example.org'
const PAGE_SIZE = 10000

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// ---- Pacing: the IETF RateLimit fields ---------------------------------------------------

// One pacer per budget (API pages, documents): after an answer whose RateLimit says a limit
// has no request left (r=0), the next call under it waits `t` seconds.
class Pacer {
  constructor(name) {
    this.name = name
    this.notBefore = 0
  }
  async wait() {
    const delay = this.notBefore - Date.now()
    if (delay > 0) {
      log('debug', `${this.name}: pacing ${delay} ms (RateLimit)`)
      await sleep(delay)
    }
  }
  observe(headers) {
    for (const limit of parseRateLimit(headers.get('ratelimit'))) {
      if (limit.r === 0) {
        // t: whole seconds until one more request is allowed (at least one: a 1 s window).
        const wait = Math.max(limit.t || 0, 1) * 1000
        this.notBefore = Math.max(this.notBefore, Date.now() + wait)
      }
    }
  }
  backOff(headers) {
    const seconds = Number(headers.get('retry-after')) || 1
    this.notBefore = Math.max(this.notBefore, Date.now() + seconds * 1000)
  }
}

// A call to the gateway: paced, retried on 429/503 after Retry-After, problems turned into errors.
async function call(pacer, url, headers) {
  for (let attempt = 0; attempt < 8; attempt++) {
    await pacer.wait()
    const response = await fetch(url, { headers })
    pacer.observe(response.headers)
    if (response.status === 429 || response.status === 503) {
      pacer.backOff(response.headers)
      continue
    }
    return response
  }
  throw new Error(errors.VENDOR_DOWN)
}

class Gateway {
  constructor(base, token) {
    this.base = base.replace(/\/+$/, '')
    this.token = token
    this.api = new Pacer('api')
    this.documents = new Pacer('documents')
  }
  url(path) {
    return new URL(path, this.base + '/').toString()
  }
  async json(path) {
    const response = await call(this.api, this.url(path), {
      Authorization: `Bearer ${this.token}`,
      Accept: 'application/json'
    })
    const body = await response.json().catch(() => ({}))
    if (response.status === 401) throw new Error(errors.USER_ACTION_NEEDED_OAUTH_OUTDATED)
    if (!response.ok) {
      const error = new Error(`${response.status} ${body.code || ''} ${body.detail || ''} (${path})`)
      error.problem = { status: response.status, ...body }
      throw error
    }
    return body
  }
  // Every page of a dataset's records, from `since` (null: from the start).
  async records(slug, since) {
    let path = `/api/v1/datasets/${slug}/records?page_size=${PAGE_SIZE}`
    if (since !== null && since !== undefined) path += `&since=${since}`
    const items = []
    let lastSeq = since || 0
    while (path) {
      const page = await this.json(path)
      items.push(...page.items)
      lastSeq = Math.max(lastSeq, page.last_seq || 0)
      path = page.next
    }
    return { items, lastSeq }
  }
  // saveFiles' `requestInstance`: downloads a document paced on the documents' budget and
  // checks that a PDF came (a 429 problem is never saved as an invoice). On failure the
  // stream ends empty: saveFiles' size check refuses the file and the bill is not saved.
  downloads() {
    return options => {
      const out = new PassThrough()
      ;(async () => {
        const response = await call(this.documents, options.uri, options.headers)
        const type = response.headers.get('content-type') || ''
        if (response.status !== 200 || !type.startsWith('application/pdf')) {
          throw new Error(`document ${options.uri}: ${response.status} ${type}`)
        }
        out.end(Buffer.from(await response.arrayBuffer()))
      })().catch(err => {
        log('warn', err.message)
        out.end()
      })
      // saveFiles treats what a request instance returns as request-promise's answer: a
      // stream that is also a promise; its errors are handled above.
      out.catch = () => out
      return out
    }
  }
}

// ---- Records → documents of the doctypes -----------------------------------------------

// Applies items to a plain doctype; `full`: the items are the whole dataset (drop the rest).
async function applyToDoctype(slug, items, full) {
  const doctype = DOCTYPES[slug]
  const existing = (await cozyClient.data.findAll(doctype)).filter(
    d => d.restitution && d.restitution.dataset === slug
  )
  const byRecord = new Map()
  for (const doc of existing) {
    const list = byRecord.get(doc.restitution.recordKey) || []
    list.push(doc)
    byRecord.set(doc.restitution.recordKey, list)
  }
  const seen = new Set()
  let written = 0
  let deleted = 0
  for (const item of lastByKey(items)) {
    seen.add(item.key)
    const old = byRecord.get(item.key) || []
    if (item.deleted) {
      for (const doc of old) await cozyClient.data.delete(doctype, doc)
      deleted += 1
      continue
    }
    const docs = toDocs(slug, item)
    const oldByKey = new Map(old.map(d => [d.restitution.key, d]))
    for (const doc of docs) {
      const current = oldByKey.get(doc.restitution.key)
      oldByKey.delete(doc.restitution.key)
      if (current) await cozyClient.data.updateAttributes(doctype, current._id, doc)
      else await cozyClient.data.create(doctype, doc)
    }
    for (const stale of oldByKey.values()) await cozyClient.data.delete(doctype, stale)
    written += 1
  }
  if (full) {
    for (const [recordKey, docs] of byRecord) {
      if (seen.has(recordKey)) continue
      for (const doc of docs) await cozyClient.data.delete(doctype, doc)
      deleted += 1
    }
  }
  return { written, deleted }
}

// Invoices: saveBills with their PDFs; deletions remove the bill (the PDF stays in the
// user's Drive: it is theirs). Returns false when a PDF could not be saved.
async function applyBills(konnector, gateway, context, items, full) {
  const existing = (await cozyClient.data.findAll('io.cozy.bills')).filter(
    d => d.restitution && d.restitution.dataset === BILLS
  )
  const latest = lastByKey(items)
  const live = latest.filter(i => !i.deleted)
  const keep = new Set(live.map(i => i.key))
  let deleted = 0
  for (const bill of existing) {
    const gone = full
      ? !keep.has(bill.restitution.recordKey)
      : latest.some(i => i.deleted && i.key === bill.restitution.recordKey)
    if (gone) {
      await cozyClient.data.delete('io.cozy.bills', bill)
      deleted += 1
    }
  }
  const entries = live.map(item => {
    const data = item.data
    return {
      ...data,
      vendor: context.vendor,
      vendorRef: data.invoice_id,
      date: new Date(`${data.issued_on}T00:00:00.000Z`),
      amount: data.amount_incl_tax,
      currency: data.currency,
      isRefund: false,
      fileurl: gateway.url(item.document_url || `/api/v1/datasets/${BILLS}/documents/${data.document.sha256}`),
      filename: `${data.issued_on}_${context.vendor}_${data.invoice_id}.pdf`.replace(/[^\w.-]+/g, '-'),
      requestOptions: {
        headers: { Authorization: `Bearer ${gateway.token}`, Accept: 'application/pdf' }
      },
      fileAttributes: {
        metadata: { contentAuthor: context.vendor, issueDate: data.issued_on, invoiceNumber: data.invoice_id }
      },
      restitution: meta(item)
    }
  })
  let saved = []
  if (entries.length) {
    saved = await konnector.saveBills(entries, context.fields, {
      sourceAccountIdentifier: context.subject,
      fileIdAttributes: ['vendorRef', 'restitution.seq'],
      keys: ['vendorRef'],
      shouldUpdate: (entry, dbEntry) =>
        entry.restitution.seq !== (dbEntry.restitution || {}).seq || entry.invoice !== dbEntry.invoice,
      requestInstance: gateway.downloads(),
      linkBankOperations: false,
      validateFile: file => Boolean(file && ((file.attributes || file).size || 0) > 0)
    })
  }
  const bills = (await cozyClient.data.findAll('io.cozy.bills')).filter(
    d => d.restitution && d.restitution.dataset === BILLS
  )
  const complete = live.every(i => bills.some(b => b.restitution.key === i.key && b.restitution.seq === i.seq))
  return { written: saved.length, deleted, complete }
}

// ---- The run ------------------------------------------------------------------------------

async function start(fields) {
  const token = fields.access_token
  if (!token) throw new Error(errors.USER_ACTION_NEEDED_OAUTH_OUTDATED)
  const gateway = new Gateway(fields.gateway_url || DEFAULT_GATEWAY, token)

  const me = await gateway.json('/api/v1/me')
  const grant = me.grant || {}
  // What this token reads (a token narrowed at refresh reads fewer datasets than the consent).
  const datasets = me.datasets || grant.datasets || []
  const granted = grant.datasets || datasets
  const state = this.getAccountData()
  const since = { ...(state.since || {}) }
  const newConsent = Boolean(state.grant) && state.grant !== grant.id
  if (newConsent) {
    log('info', `consent changed (${state.grant} → ${grant.id}): every dataset is read again`)
  }

  const context = {
    fields,
    vendor: (me.holder && me.holder.name) || 'restitution-gateway',
    subject: me.sub || me.subject
  }
  const report = {}
  for (const slug of datasets) {
    if (!DOCTYPES[slug]) {
      log('warn', `${slug}: no doctype for this dataset, skipped`)
      continue
    }
    let cursor = newConsent ? null : since[slug] ?? null
    let page
    try {
      page = await gateway.records(slug, cursor)
    } catch (err) {
      // A gateway that refuses a cursor of another consent answers a problem saying to resync.
      const problem = err.problem || {}
      if (cursor !== null && [400, 409, 410].includes(problem.status) && /resync|cursor|since/i.test(
        `${problem.code} ${problem.detail} ${problem.type}`)) {
        log('info', `${slug}: the gateway asks to resync (${problem.code}): reading it again`)
        cursor = null
        page = await gateway.records(slug, null)
      } else {
        throw err
      }
    }
    const full = cursor === null
    const result = slug === BILLS
      ? await applyBills(this, gateway, context, page.items, full)
      : await applyToDoctype(slug, page.items, full)
    if (result.complete === false) {
      log('warn', `${slug}: some documents could not be saved: the cursor stays for the next run`)
    } else {
      since[slug] = page.lastSeq
    }
    report[slug] = { full, items: page.items.length, written: result.written, deleted: result.deleted }
    log('info', `${slug}: ${page.items.length} items (${full ? 'full read' : `since ${cursor}`}), ` +
      `${result.written} written, ${result.deleted} deleted`)
  }
  // Datasets no longer in the consent: their docs go (the customer took them back).
  for (const slug of Object.keys(since)) {
    if (granted.includes(slug)) continue
    delete since[slug]
    if (slug !== BILLS) await applyToDoctype(slug, [], true)
  }
  await this.saveAccountData({ grant: grant.id, since, lastRun: report }, { merge: false })
}

module.exports = new BaseKonnector(start)
