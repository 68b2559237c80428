// The residents' API (/api/mp/v1) for the pages: login and token refresh, requests with retry,
// photo upload with retry, tips with an Idempotency-Key kept across retries, and the API's own
// error messages (Chinese, written for residents) shown as they are.
const config = require('../config')

const SESSION_KEY = 'rrp.session' // {token, expiresAt}
const RENEW_BEFORE_MS = 5 * 60 * 1000 // log in again this long before the token expires

class ApiError extends Error {
  constructor(message, {status = 0, code = 'network_error', fields = null} = {}) {
    super(message)
    this.status = status
    this.code = code
    this.fields = fields
  }
}

const NETWORK_MESSAGE = '网络不给力，请稍后重试'

function promisify(fn, options = {}) {
  return new Promise((resolve, reject) => fn({...options, success: resolve, fail: reject}))
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

function retryDelay(attempt, header) {
  const after = header && (header['Retry-After'] || header['retry-after'])
  const seconds = Number(after)
  if (seconds > 0 && seconds <= 10) return seconds * 1000 // longer waits are not worth holding the page
  return config.retryDelayMs * (attempt + 1)
}

function errorFrom(statusCode, data) {
  const error = data && typeof data === 'object' && data.error
  if (error && error.message) {
    return new ApiError(error.message, {status: statusCode, code: error.code, fields: error.fields || null})
  }
  return new ApiError(`服务暂时不可用（${statusCode}），请稍后重试`, {status: statusCode, code: 'http_error'})
}

function retriable(statusCode) {
  return statusCode === 429 || statusCode >= 500
}

// --- session ----------------------------------------------------------------------------------

let session = null
let loggingIn = null

function currentSession() {
  if (!session) {
    const stored = wx.getStorageSync(SESSION_KEY)
    session = stored && stored.token ? stored : null
  }
  return session
}

function forgetSession() {
  session = null
  wx.removeStorageSync(SESSION_KEY)
}

// wx.login → POST /auth/login. A code is good once: every try asks WeChat for a new one.
function login() {
  if (!loggingIn) {
    loggingIn = (async () => {
      let lastError = null
      for (let attempt = 0; attempt <= config.retries; attempt++) {
        const {code} = await promisify(wx.login)
        let res
        try {
          res = await promisify(wx.request, {
            url: config.apiBase + '/auth/login', method: 'POST', data: {code},
            header: {'content-type': 'application/json'},
          })
        } catch (failure) {
          lastError = new ApiError(NETWORK_MESSAGE)
          await sleep(retryDelay(attempt))
          continue
        }
        if (res.statusCode === 200) {
          session = {token: res.data.token, expiresAt: Date.now() + res.data.expires_in * 1000}
          wx.setStorageSync(SESSION_KEY, session)
          return session
        }
        lastError = errorFrom(res.statusCode, res.data)
        if (!retriable(res.statusCode) && res.data && res.data.error && res.data.error.code !== 'wechat_code_invalid') {
          break
        }
        await sleep(retryDelay(attempt, res.header))
      }
      throw lastError
    })().finally(() => { loggingIn = null })
  }
  return loggingIn
}

async function validToken() {
  const current = currentSession()
  if (current && current.expiresAt - Date.now() > RENEW_BEFORE_MS) return current.token
  return (await login()).token
}

// --- requests -----------------------------------------------------------------------------------

// One API call. `retries`: how often a lost request is sent again (only for calls that are safe to
// repeat: reads, and writes the server recognises again, like a tip with its Idempotency-Key).
// A 401 logs in again once (the token expired or was revoked) and repeats the call, unless `renew`
// is false (closing the account: a new login would be somebody new).
async function call(method, path, {data, header = {}, retries = 0, auth = true, renew = true} = {}) {
  let renewed = !renew
  for (let attempt = 0; ; attempt++) {
    const headers = {'content-type': 'application/json', ...header}
    if (auth) headers.Authorization = 'Bearer ' + await validToken()
    let res
    try {
      res = await promisify(wx.request, {url: config.apiBase + path, method, data, header: headers})
    } catch (failure) {
      if (attempt < retries) { await sleep(retryDelay(attempt)); continue }
      throw new ApiError(NETWORK_MESSAGE)
    }
    if (res.statusCode === 401 && auth && !renewed) {
      renewed = true
      forgetSession()
      attempt-- // a renewed token is not a retry
      continue
    }
    if (retriable(res.statusCode) && attempt < retries) { await sleep(retryDelay(attempt, res.header)); continue }
    if (res.statusCode >= 400) throw errorFrom(res.statusCode, res.data)
    return res.data
  }
}

// wx.uploadFile with retry; answers {"id", "url", "thumb_url", ...}. A retry after a lost answer may
// leave an unused copy on the server, which deletes it within a day.
async function uploadPhoto(filePath) {
  let renewed = false
  for (let attempt = 0; ; attempt++) {
    const token = await validToken()
    let res
    try {
      res = await promisify(wx.uploadFile, {
        url: config.apiBase + '/photos', filePath, name: 'file', header: {Authorization: 'Bearer ' + token},
      })
    } catch (failure) {
      if (attempt < config.retries) { await sleep(retryDelay(attempt)); continue }
      throw new ApiError(NETWORK_MESSAGE)
    }
    let data = res.data
    try { data = typeof data === 'string' ? JSON.parse(data) : data } catch (e) { data = null }
    if (res.statusCode === 401 && !renewed) { renewed = true; forgetSession(); attempt--; continue }
    if (retriable(res.statusCode) && attempt < config.retries) { await sleep(retryDelay(attempt, res.header)); continue }
    if (res.statusCode >= 400 || !data) throw errorFrom(res.statusCode, data)
    return data
  }
}

// A random UUID (v4) for Idempotency-Key: one per tip, kept by the caller until the tip is in.
function newIdempotencyKey() {
  const bytes = []
  for (let i = 0; i < 16; i++) bytes.push(Math.floor(Math.random() * 256))
  bytes[6] = (bytes[6] & 0x0f) | 0x40
  bytes[8] = (bytes[8] & 0x3f) | 0x80
  const hex = bytes.map(b => (b + 0x100).toString(16).slice(1)).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

function query(params) {
  const parts = Object.keys(params).filter(k => params[k] !== undefined && params[k] !== null && params[k] !== '')
    .map(k => `${encodeURIComponent(k)}=${encodeURIComponent(params[k])}`)
  return parts.length ? '?' + parts.join('&') : ''
}

// The API's own message, as it is (it is written for residents).
function showError(error) {
  wx.showModal({title: '提示', content: (error && error.message) || NETWORK_MESSAGE, showCancel: false})
}

module.exports = {
  ApiError,
  login,
  forgetSession,
  currentSession,
  call,
  uploadPhoto,
  newIdempotencyKey,
  showError,
  privacy: () => call('GET', '/privacy', {auth: false, retries: 2}),
  categories: () => call('GET', '/categories', {retries: 2}),
  nearby: (lat, lng, category) => call('GET', '/hazards/nearby' + query({lat, lng, coord: 'gcj02', category}), {retries: 2}),
  submitTip: (body, key) => call('POST', '/tips', {data: body, header: {'Idempotency-Key': key}, retries: config.retries}),
  tips: cursor => call('GET', '/tips' + query({cursor}), {retries: 2}),
  tip: id => call('GET', `/tips/${id}`, {retries: 2}),
  withdraw: id => call('POST', `/tips/${id}/withdraw`, {retries: 2}),
  rewards: cursor => call('GET', '/rewards' + query({cursor}), {retries: 2}),
  exportMine: () => call('GET', '/me/export', {retries: 1}),
  closeAccount: () => call('DELETE', '/me', {renew: false}),
}
