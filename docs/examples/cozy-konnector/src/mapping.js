// The gateway's records → documents of Cozy doctypes, and the RateLimit header's parser.
// No dependency: the tests load it alone.

// Dataset slug → doctype. The MesInfos pilots' doctypes where one existed (Enedis load curve,
// MAIF contracts, Orange call log) and io.cozy.bills for invoices; the others are named in the
// same families.
const DOCTYPES = {
  'energy-load-curve': 'fr.enedis.api.meteringdata.loadcurve',
  'energy-daily-consumption': 'fr.enedis.api.meteringdata.dailyconsumption',
  'energy-contract': 'fr.enedis.api.meteringdata.contract',
  'insurance-contracts': 'fr.maif.maifuser.contrat',
  'insurance-claims': 'fr.maif.maifuser.sinistre',
  'telco-call-log': 'fr.orange.phonecommunicationlog',
  'telco-invoices': 'io.cozy.bills'
}
const BILLS = 'telco-invoices'

// `RateLimit: "customer";r=7;t=1, "client";r=49;t=1` → [{name, r, t}]
function parseRateLimit(header) {
  if (!header) return []
  return header.split(',').map(item => {
    const [name, ...params] = item.trim().split(';')
    const out = { name: name.replace(/"/g, '') }
    for (const param of params) {
      const [k, v] = param.trim().split('=')
      out[k] = Number(v)
    }
    return out
  })
}

// A record's date field in the catalogue, for the docs' `date`.
const DATE_FIELDS = {
  'energy-load-curve': 'start',
  'energy-daily-consumption': 'day',
  'energy-contract': 'start_date',
  'insurance-contracts': 'start_date',
  'insurance-claims': 'occurred_on',
  'telco-call-log': 'started_at',
  'telco-invoices': 'issued_on'
}

function meta(item, key) {
  return { dataset: item.dataset, key: key || item.key, recordKey: item.key, seq: item.seq }
}

// One record → the docs it makes (one, except a load-curve day record with `readings`).
function toDocs(slug, item) {
  const data = item.data
  if (slug === 'energy-load-curve') {
    // One record per half hour, or one per meter and local day holding a `readings` list:
    // each reading becomes a doc of its own, keyed like a half-hour record.
    const readings = Array.isArray(data.readings)
      ? data.readings.map(reading => {
          const { readings, ...day } = data // eslint-disable-line no-unused-vars
          return { ...day, ...reading }
        })
      : [data]
    return readings.map(reading => {
      const start = reading.start || reading.at || reading.timestamp
      const value = reading.average_power_kw ?? reading.value ?? reading.kw
      return {
        ...reading,
        prm: reading.delivery_point,
        date: start,
        value,
        unit: 'kW',
        restitution: meta(item, `${reading.delivery_point}|${start}`)
      }
    })
  }
  const doc = { ...data, date: data[DATE_FIELDS[slug]], restitution: meta(item) }
  if (slug === 'telco-call-log') {
    Object.assign(doc, {
      timestamp: data.started_at,
      msisdn: data.line,
      partner: data.correspondent,
      type: data.kind === 'sms' ? 'sms' : 'voice',
      length: data.duration_s
    })
  } else if (slug === 'energy-daily-consumption') {
    Object.assign(doc, { prm: data.delivery_point, value: data.energy_kwh, unit: 'kWh' })
  } else if (slug === 'energy-contract') {
    Object.assign(doc, { prm: data.delivery_point })
  }
  return [doc]
}

// The last item of each key, in sequence order: applying only it gives the same result.
function lastByKey(items) {
  const last = new Map()
  for (const item of items) {
    last.delete(item.key)
    last.set(item.key, item)
  }
  return [...last.values()]
}

module.exports = { BILLS, DOCTYPES, DATE_FIELDS, lastByKey, meta, parseRateLimit, toDocs }
