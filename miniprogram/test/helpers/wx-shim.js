// A `wx` for Node: what the pages ask of WeChat's client. Network calls are real: wx.request and
// wx.uploadFile go over loopback to the server (the app under test), and what WeChat's client
// itself does — wx.login's code, the subscribe-message acceptance, opening a red packet — goes to
// the WeChat sandbox's own endpoints, as the phone would to WeChat. Nothing answers for the server.
// The screen (modals, toasts, navigation) is recorded for the tests to read.
const fs = require('fs')
const path = require('path')

function createShim({sandboxUrl}) {
  const shim = {
    openid: null,           // the WeChat user on this phone
    storage: new Map(),
    calls: [],              // [name, options] in order
    media: [],              // what wx.chooseMedia hands out next
    location: null,         // what wx.getLocation says: {latitude, longitude}
    chosenPlace: null,      // what wx.chooseLocation says
    modalAnswers: [],       // answers to wx.showModal, in order (default: confirm)
    lostReplies: [],        // [{method, match, count}]: the server gets the request, its reply is lost
    merchantTransfer: null, // handler for wx.requestMerchantTransfer (no transfer channel to talk to yet)
  }

  const record = (name, options) => shim.calls.push([name, options])
  const ok = (options, result) => {
    if (options.success) options.success(result)
    if (options.complete) options.complete(result)
  }
  const fail = (options, errMsg) => {
    const result = {errMsg}
    if (options.fail) options.fail(result)
    if (options.complete) options.complete(result)
  }
  const later = fn => setTimeout(fn, 0) // WeChat calls back asynchronously, never inside the call

  async function post(url, body) {
    const res = await fetch(url, {method: 'POST', headers: {'content-type': 'application/json'},
                                  body: JSON.stringify(body)})
    return {status: res.status, body: await res.json().catch(() => null)}
  }

  function replyLost(method, url) {
    const rule = shim.lostReplies.find(r => r.count > 0 && r.method === method && url.includes(r.match))
    if (rule) rule.count -= 1
    return !!rule
  }

  function header(res) {
    const out = {}
    res.headers.forEach((value, key) => { out[key.replace(/(^|-)\w/g, c => c.toUpperCase())] = value })
    return out
  }

  async function body(res) {
    const text = await res.text()
    if ((res.headers.get('content-type') || '').includes('json')) {
      try { return JSON.parse(text) } catch (e) { return text }
    }
    return text
  }

  const wx = {
    // --- network, to the real server ---------------------------------------------------------------
    request(options) {
      record('request', options)
      const method = (options.method || 'GET').toUpperCase()
      let url = options.url
      const init = {method, headers: {...(options.header || {})}}
      if (options.data !== undefined && options.data !== null) {
        if (method === 'GET') {
          const q = Object.entries(options.data).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
          if (q.length) url += (url.includes('?') ? '&' : '?') + q.join('&')
        } else {
          init.body = typeof options.data === 'string' ? options.data : JSON.stringify(options.data)
        }
      }
      fetch(url, init).then(async res => {
        const data = await body(res)
        if (replyLost(method, url)) return later(() => fail(options, 'request:fail timeout'))
        later(() => ok(options, {statusCode: res.status, data, header: header(res), errMsg: 'request:ok'}))
      }, error => later(() => fail(options, 'request:fail ' + error.message)))
      return {abort() {}}
    },

    uploadFile(options) {
      record('uploadFile', options)
      const form = new FormData()
      const bytes = fs.readFileSync(options.filePath)
      form.append(options.name, new Blob([bytes], {type: 'image/jpeg'}), path.basename(options.filePath))
      Object.entries(options.formData || {}).forEach(([k, v]) => form.append(k, v))
      fetch(options.url, {method: 'POST', headers: {...(options.header || {})}, body: form}).then(async res => {
        const data = await res.text() // wx.uploadFile hands the body over as a string
        if (replyLost('UPLOAD', options.url)) return later(() => fail(options, 'uploadFile:fail timeout'))
        later(() => ok(options, {statusCode: res.status, data, errMsg: 'uploadFile:ok'}))
      }, error => later(() => fail(options, 'uploadFile:fail ' + error.message)))
      return {abort() {}, onProgressUpdate() {}}
    },

    // --- WeChat's client, in the sandbox -----------------------------------------------------------
    login(options) {
      record('login', options)
      post(`${sandboxUrl}/__sandbox__/codes`, {openid: shim.openid}).then(
        res => later(() => (res.status === 200 ? ok(options, {code: res.body.code, errMsg: 'login:ok'})
          : fail(options, 'login:fail'))),
        error => later(() => fail(options, 'login:fail ' + error.message)))
    },

    requestSubscribeMessage(options) {
      record('requestSubscribeMessage', options)
      Promise.all(options.tmplIds.map(id => post(`${sandboxUrl}/__sandbox__/subscriptions`,
                                                 {openid: shim.openid, template_id: id, count: 1})))
        .then(() => {
          const result = {errMsg: 'requestSubscribeMessage:ok'}
          options.tmplIds.forEach(id => { result[id] = 'accept' })
          later(() => ok(options, result))
        }, error => later(() => fail(options, 'requestSubscribeMessage:fail ' + error.message)))
    },

    sendBizRedPacket(options) {
      record('sendBizRedPacket', options)
      const params = {}
      ;['timeStamp', 'nonceStr', 'package', 'signType', 'paySign'].forEach(k => { params[k] = options[k] })
      post(`${sandboxUrl}/__sandbox__/client/redpacks/open`, {...params, openid: shim.openid}).then(
        res => later(() => (res.status === 200 ? ok(options, {errMsg: res.body.errMsg})
          : fail(options, (res.body && res.body.errMsg) || 'sendBizRedPacket:fail'))),
        error => later(() => fail(options, 'sendBizRedPacket:fail ' + error.message)))
    },

    requestMerchantTransfer(options) {
      record('requestMerchantTransfer', options)
      if (!shim.merchantTransfer) return later(() => fail(options, 'requestMerchantTransfer:fail no transfer channel'))
      const errMsg = shim.merchantTransfer(options)
      later(() => (errMsg === 'requestMerchantTransfer:ok' ? ok(options, {errMsg}) : fail(options, errMsg)))
    },

    // --- the phone's hardware ------------------------------------------------------------------------
    chooseMedia(options) {
      record('chooseMedia', options)
      const files = shim.media.splice(0, options.count || 9)
      later(() => (files.length ? ok(options, {tempFiles: files.map(f => ({tempFilePath: f, fileType: 'image'}))})
        : fail(options, 'chooseMedia:fail cancel')))
    },
    getLocation(options) {
      record('getLocation', options)
      later(() => (shim.location ? ok(options, {...shim.location, errMsg: 'getLocation:ok'})
        : fail(options, 'getLocation:fail auth deny')))
    },
    chooseLocation(options) {
      record('chooseLocation', options)
      later(() => (shim.chosenPlace ? ok(options, {...shim.chosenPlace, errMsg: 'chooseLocation:ok'})
        : fail(options, 'chooseLocation:fail cancel')))
    },

    // --- storage ---------------------------------------------------------------------------------------
    getStorageSync: key => (shim.storage.has(key) ? JSON.parse(shim.storage.get(key)) : ''),
    setStorageSync: (key, value) => { shim.storage.set(key, JSON.stringify(value)) },
    removeStorageSync: key => { shim.storage.delete(key) },

    // --- the screen ------------------------------------------------------------------------------------
    showModal(options) {
      record('showModal', options)
      const answer = shim.modalAnswers.length ? shim.modalAnswers.shift() : true
      later(() => ok(options, {confirm: answer, cancel: !answer}))
    },
    showToast: options => record('showToast', options),
    showLoading: options => record('showLoading', options),
    hideLoading: () => record('hideLoading', {}),
    navigateTo: options => record('navigateTo', options),
    switchTab: options => record('switchTab', options),
    previewImage: options => record('previewImage', options),
    stopPullDownRefresh: () => record('stopPullDownRefresh', {}),
    setClipboardData(options) {
      record('setClipboardData', options)
      later(() => ok(options, {errMsg: 'setClipboardData:ok'}))
    },
    canIUse: () => true,
  }

  // What the tests read back.
  shim.wx = wx
  shim.named = name => shim.calls.filter(c => c[0] === name).map(c => c[1])
  shim.lastModal = () => { const m = shim.named('showModal'); return m.length ? m[m.length - 1].content : null }
  shim.reset = openid => {
    shim.openid = openid
    shim.storage.clear()
    shim.calls.length = 0
    shim.lostReplies.length = 0
    shim.modalAnswers.length = 0
    shim.media = []
  }
  return shim
}

module.exports = {createShim}
