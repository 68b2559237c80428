// The phone page: what the mini-program does, in a browser, against the real residents' API.
// Residents' API calls go to api/… (this sandbox forwards them to the app's /api/mp/v1/…); what
// WeChat itself does on the phone (wx.login codes, opening a red packet, confirming a 商家转账,
// subscribe messages) goes to
// the sandbox's own /__sandbox__/… endpoints.
'use strict'

const SANDBOX = '/__sandbox__'
// Several residents on one phone, so a demo can show duplicates and "already reported".
const RESIDENTS = [
  {openid: 'demo-resident-01', name: '张阿姨'},
  {openid: 'demo-resident-02', name: '李师傅'},
  {openid: 'demo-resident-03', name: '小王'},
  {openid: 'demo-resident-04', name: '陈老师'},
]
const TIP_LABELS = {
  received: '已提交', checking: '核验中', pending_review: '待审核', accepted: '已采纳', rejected: '未采纳',
  duplicate: '重复报料', need_info: '需补充信息', withdrawn: '已撤回',
}
const HAZARD_LABELS = {
  reported: '已上报', dispatched: '已分拨', accepted: '已受理', handling: '处置中', resolved: '已处置',
  verified: '已核查', closed: '已结案', returned: '已退回', reopened: '重新处置',
}
const REWARD_LABELS = {
  reserved: '发放准备中', sending: '发放中', sent: '待领取', waiting_confirm: '待确认收款', claimed: '已领取',
  refunded: '已退回（超过24小时未领取）', failed: '发放失败', cancelled: '已取消', manual_review: '人工核对中',
}
// Timeline entries: tip statuses, and the ticket's progress as "hazard_<ticket status>" (app/display.py).
function timelineLabel(code) {
  if (TIP_LABELS[code]) return TIP_LABELS[code]
  if (code === 'hazard_linked') return '已转为隐患工单'
  if (code === 'reward') return '奖励'
  if (code && code.startsWith('hazard_') && HAZARD_LABELS[code.slice(7)]) return '工单' + HAZARD_LABELS[code.slice(7)]
  return '进度更新'
}
const GOOD = ['accepted', 'claimed', 'closed', 'verified']
const BAD = ['rejected', 'failed', 'refunded', 'withdrawn', 'cancelled']

const $ = (id) => document.getElementById(id)
const state = {resident: null, token: null, residentId: null, categories: [], place: null,
  photos: [], submitKey: null, submitting: false, map: null, pin: null}

// --- small helpers ---------------------------------------------------------------------------------

function esc(text) {
  return String(text == null ? '' : text).replace(/[&<>"']/g, (c) =>
    ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]))
}
function pad(n) { return n < 10 ? '0' + n : String(n) }
// ISO-8601 with offset → "2026-12-05 14:03" in Beijing time, whatever the computer's time zone.
function beijing(iso) {
  if (!iso) return ''
  const d = new Date(Date.parse(iso) + 8 * 3600 * 1000)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
}
function yuan(fen) { return '¥' + (Number(fen || 0) / 100).toFixed(2) }
function distance(m) { return m >= 1000 ? (m / 1000).toFixed(1) + ' 公里' : Math.round(m) + ' 米' }
function badgeClass(status) { return GOOD.includes(status) ? 'good' : BAD.includes(status) ? 'bad' : 'wait' }
function badge(status, label) { return `<span class="badge ${badgeClass(status)}">${esc(label || status)}</span>` }
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID()
  return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
    const r = Math.random() * 16 | 0
    return (c === 'x' ? r : (r & 3 | 8)).toString(16)
  })
}
let toastTimer = null
function toast(text, ms = 2200) {
  const box = $('toast')
  box.textContent = text
  box.hidden = false
  clearTimeout(toastTimer)
  toastTimer = setTimeout(() => { box.hidden = true }, ms)
}
function stored(key, value) {
  if (value === undefined) return localStorage.getItem('rrp:' + key)
  if (value === null) localStorage.removeItem('rrp:' + key)
  else localStorage.setItem('rrp:' + key, value)
}

// GCJ-02 (what wx.getLocation gives) from WGS-84 (the demo map's outline): the public formula.
function wgsToGcj(lat, lng) {
  const a = 6378245.0, ee = 0.00669342162296594323, PI = Math.PI
  const x = lng - 105.0, y = lat - 35.0
  let dLat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x))
  dLat += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0
  dLat += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0
  dLat += (160.0 * Math.sin(y / 12.0 * PI) + 320 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0
  let dLng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x))
  dLng += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0
  dLng += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0
  dLng += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0
  const radLat = lat / 180.0 * PI
  const magic = 1 - ee * Math.sin(radLat) ** 2
  const sqrtMagic = Math.sqrt(magic)
  dLat = (dLat * 180.0) / ((a * (1 - ee)) / (magic * sqrtMagic) * PI)
  dLng = (dLng * 180.0) / (a / sqrtMagic * Math.cos(radLat) * PI)
  return [lat + dLat, lng + dLng]
}

// --- calls -----------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {}
    super(error.message || `请求失败（${status}）`)
    this.status = status
    this.code = error.code
  }
}

async function sandbox(method, path, body) {
  const reply = await fetch(SANDBOX + path, {method, headers: body ? {'Content-Type': 'application/json'} : {},
    body: body ? JSON.stringify(body) : undefined})
  const data = await reply.json().catch(() => ({}))
  if (!reply.ok) throw new Error(data.errMsg || data.error || `微信沙箱出错（${reply.status}）`)
  return data
}

// The residents' API, with the token; a 401 logs in again once (wx.login → /auth/login) and retries.
async function api(method, path, {json, form, headers = {}, retry = true} = {}) {
  const options = {method, headers: {...headers}}
  if (state.token) options.headers.Authorization = 'Bearer ' + state.token
  if (json !== undefined) {
    options.headers['Content-Type'] = 'application/json'
    options.body = JSON.stringify(json)
  } else if (form) {
    options.body = form
  }
  const reply = await fetch('api/' + path, options)
  const data = await reply.json().catch(() => null)
  if (reply.status === 401 && retry && path !== 'auth/login') {
    await login(true)
    return api(method, path, {json, form, headers, retry: false})
  }
  if (!reply.ok) throw new ApiError(reply.status, data)
  return data
}

async function login(fresh = false) {
  const who = state.resident
  state.token = fresh ? null : stored('token:' + who.openid)
  if (!state.token) {
    $('login-state').textContent = `${who.name} 正在登录…`
    const {code} = await sandbox('POST', '/codes', {openid: who.openid})  // wx.login
    const answer = await api('POST', 'auth/login', {json: {code}, retry: false})
    state.token = answer.token
    stored('token:' + who.openid, answer.token)
    stored('id:' + who.openid, String(answer.resident.id))
  }
  state.residentId = stored('id:' + who.openid)
  $('login-state').textContent = `已登录：${who.name}（居民 #${state.residentId}）`
}

// --- privacy notice --------------------------------------------------------------------------------

let privacyNotice = null
async function ensurePrivacy(force = false) {
  if (!privacyNotice) privacyNotice = await api('GET', 'privacy', {retry: false})
  const key = 'privacy:' + state.resident.openid
  if (!force && stored(key) === String(privacyNotice.version)) return true
  $('privacy-text').textContent = privacyNotice.text
  $('privacy').hidden = false
  return new Promise((resolve) => {
    $('privacy-yes').onclick = () => {
      stored(key, String(privacyNotice.version))
      $('privacy').hidden = true
      resolve(true)
    }
    $('privacy-no').onclick = () => {
      $('privacy').hidden = true
      resolve(force ? stored(key) === String(privacyNotice.version) : false)
    }
  })
}

// --- 报料 ------------------------------------------------------------------------------------------

async function loadCategories() {
  const {items} = await api('GET', 'categories')
  state.categories = items
  const select = $('category')
  select.length = 1
  const groups = {}
  for (const item of items) (groups[item.group || '其他'] = groups[item.group || '其他'] || []).push(item)
  for (const [group, list] of Object.entries(groups)) {
    const optgroup = document.createElement('optgroup')
    optgroup.label = group
    for (const item of list) optgroup.append(new Option(item.name, item.code))
    select.append(optgroup)
  }
}

// The demo's map: Leaflet (the console's map library) with no tiles — Dongguan's outline and its
// towns as vectors on a plain background, offline. A tap sets the point.
async function drawMap() {
  const data = await (await fetch('places.json')).json()
  const map = L.map('map', {attributionControl: false, zoomSnap: 0.5})
  map.fitBounds(L.latLngBounds(data.outline))  // the view first: Leaflet clips vectors to it when added
  L.polygon(data.outline, {color: '#4a7a2c', weight: 2, fillColor: '#eef2e6', fillOpacity: 1,
    interactive: false}).addTo(map)
  const labels = L.layerGroup()  // town names once zoomed in far enough for them not to overlap
  for (const town of data.towns) {
    L.circleMarker([town.lat, town.lng], {radius: 3, color: '#4a7a2c', fillOpacity: 1, weight: 1}).addTo(map)
    labels.addLayer(L.tooltip({permanent: true, direction: 'top', offset: [0, -4]})
      .setLatLng([town.lat, town.lng]).setContent(town.name))
    $('town').append(new Option(town.name, `${town.lat},${town.lng}`))
  }
  map.on('zoomend', () => {
    if (map.getZoom() >= 11) labels.addTo(map)
    else labels.remove()
  })
  L.control.scale({imperial: false}).addTo(map)
  map.on('click', (event) => {
    $('town').value = ''
    setPlace(event.latlng.lat, event.latlng.lng, '地图选点')
  })
  state.map = map
}

// The place as the phone would give it: GCJ-02, as from wx.getLocation / wx.chooseLocation.
function setPlace(wgsLat, wgsLng, where) {
  const [lat, lng] = wgsToGcj(wgsLat, wgsLng)
  state.place = {lat: Number(lat.toFixed(6)), lng: Number(lng.toFixed(6))}
  if (state.pin) state.pin.setLatLng([wgsLat, wgsLng])
  else {
    state.pin = L.circleMarker([wgsLat, wgsLng], {radius: 7, color: '#fff', weight: 2, fillColor: '#e64340',
      fillOpacity: 1, interactive: false}).addTo(state.map)
  }
  $('place').textContent = `${where}：北纬 ${state.place.lat.toFixed(5)}，东经 ${state.place.lng.toFixed(5)}（GCJ-02）`
  checkNearby()
}

// 附近已有人报过: open tickets of the chosen category near the chosen point.
async function checkNearby() {
  const box = $('nearby')
  const category = $('category').value
  if (!state.place || !category) { box.hidden = true; return }
  try {
    const q = new URLSearchParams({lat: state.place.lat, lng: state.place.lng, coord: 'gcj02', category})
    const {items} = await api('GET', 'hazards/nearby?' + q)
    if (!items.length) { box.hidden = true; return }
    box.innerHTML = `<b>附近已有人报过</b>（${items.length} 处同类隐患正在处理）：<ul>` +
      items.map((h) => `<li>工单 #${h.id} · ${esc(HAZARD_LABELS[h.status] || h.status)} · 距此 ${distance(h.distance_m)} · ${beijing(h.created_at)}</li>`).join('') +
      '</ul>如果是同一处隐患，可以不必重复报料；您仍可以提交补充情况。'
    box.hidden = false
  } catch (error) {
    box.hidden = true
  }
}

function renderPhotos() {
  $('photos').innerHTML = state.photos.map((p) =>
    `<figure><img src="${esc(p.preview)}" alt="照片"><figcaption>${esc(p.note)}</figcaption></figure>`).join('')
}

async function addPhotos(files) {
  for (const file of files) {
    if (state.photos.length >= 9) { toast('最多 9 张照片'); break }
    const entry = {preview: URL.createObjectURL(file), note: '上传中…', id: null}
    state.photos.push(entry)
    renderPhotos()
    try {
      const form = new FormData()
      form.append('file', file, file.name || 'photo.jpg')  // wx.uploadFile, field "file"
      const answer = await api('POST', 'photos', {form})
      entry.id = answer.id
      entry.note = '已上传'
    } catch (error) {
      state.photos.splice(state.photos.indexOf(entry), 1)
      toast('照片上传失败：' + error.message)
    }
    renderPhotos()
  }
}

async function submitTip() {
  if (state.submitting) return
  const photoIds = state.photos.filter((p) => p.id).map((p) => p.id)
  const category = $('category').value
  if (!photoIds.length) return toast('请先拍照或选择照片')
  if (state.photos.some((p) => !p.id)) return toast('照片还在上传，请稍候')
  if (!state.place) return toast('请在地图上选择位置')
  if (!category) return toast('请选择隐患类别')
  if (!(await ensurePrivacy())) return toast('同意个人信息保护告知后才能报料')
  const body = {category, description: $('description').value.trim(), photo_ids: photoIds,
    location: {...state.place, coord: 'gcj02', ...($('address').value.trim() ? {address: $('address').value.trim()} : {})}}
  // One key per tip, kept across retries: a resend after a dropped connection makes no second tip.
  state.submitKey = state.submitKey || uuid()
  state.submitting = true
  $('submit').disabled = true
  $('submit-note').textContent = '正在提交…'
  try {
    const tip = await api('POST', 'tips', {json: body, headers: {'Idempotency-Key': state.submitKey}})
    resetForm()
    toast(`报料已提交（#${tip.id}），感谢您！`)
    go('tip', tip.id)
  } catch (error) {
    if (error instanceof ApiError) {
      $('submit-note').textContent = ''
      if (error.code === 'idempotency_conflict') state.submitKey = null
      toast(error.message, 3500)
    } else {  // no answer: the tip may or may not be stored; the same key makes a retry safe
      $('submit-note').textContent = '网络中断：请再点一次「提交报料」，不会重复报料。'
    }
  } finally {
    state.submitting = false
    $('submit').disabled = false
  }
}

function resetForm() {
  state.photos = []
  state.submitKey = null
  renderPhotos()
  $('description').value = ''
  $('address').value = ''
  $('count').textContent = '0/500'
  $('submit-note').textContent = ''
  $('nearby').hidden = true
}

// --- 我的报料 --------------------------------------------------------------------------------------

async function showTips() {
  const list = $('tips')
  list.innerHTML = '<li class="muted">加载中…</li>'
  const {items} = await api('GET', 'tips?limit=50')
  if (!items.length) { list.innerHTML = '<li class="muted">还没有报料。看到隐患，拍一张发给我们吧。</li>'; return }
  list.innerHTML = items.map((t) => `<li class="card" data-tip="${t.id}">
      ${t.photos.length ? `<img class="thumb" src="${esc(t.photos[0].thumb_url)}" alt="">` : ''}
      <div class="top"><span class="name">${esc(t.category_name)}</span>${badge(t.status, t.status_label)}</div>
      <div class="desc">${esc(t.description || '（无描述）')}</div>
      <div class="meta">#${t.id} · ${beijing(t.created_at)}${t.location.address ? ' · ' + esc(t.location.address) : ''}</div>
    </li>`).join('')
}

async function showTip(id) {
  const box = $('tip')
  box.innerHTML = '<p class="muted">加载中…</p>'
  const t = await api('GET', `tips/${id}`)
  const withdrawable = ['received', 'checking', 'pending_review'].includes(t.status)
  box.innerHTML = `
    <div class="card">
      <div class="top"><span class="name">${esc(t.category_name)}</span>${badge(t.status, t.status_label)}</div>
      <div class="meta">报料 #${t.id} · ${beijing(t.created_at)}</div>
      <p>${esc(t.description || '（无描述）')}</p>
      ${t.message ? `<div class="message">审核说明：${esc(t.message)}</div>` : ''}
      ${t.hazard ? `<p>隐患工单 #${t.hazard.id}：${badge(t.hazard.status, t.hazard.status_label || HAZARD_LABELS[t.hazard.status])}</p>` : ''}
      ${t.reward ? `<p>奖励：<span class="amount">${yuan(t.reward.amount_fen)}</span> ${badge(t.reward.status, REWARD_LABELS[t.reward.status])}</p>` : ''}
      <div class="meta">位置：${t.location.address ? esc(t.location.address) + ' · ' : ''}${t.location.lat.toFixed(5)}, ${t.location.lng.toFixed(5)}（${t.location.coord === 'wgs84' ? 'WGS-84' : 'GCJ-02'}）</div>
    </div>
    <h3>进度</h3>
    <ul class="timeline">${t.timeline.map((e) => `<li>
      <div>${esc(timelineLabel(e.status))}</div>
      ${e.note ? `<div class="small">${esc(e.note)}</div>` : ''}
      <div class="when">${beijing(e.at)}</div></li>`).join('')}</ul>
    <div class="detail-photos">${t.photos.map((p) => `<img src="${esc(p.url)}" alt="报料照片">`).join('')}</div>
    ${withdrawable ? '<button id="withdraw" class="button ghost">撤回报料</button>' : ''}`
  if (withdrawable) {
    $('withdraw').onclick = async () => {
      if (!confirm('确定撤回这条报料吗？')) return
      try {
        await api('POST', `tips/${t.id}/withdraw`)
        toast('已撤回')
      } catch (error) { toast(error.message) }
      showTip(t.id)
    }
  }
}

// --- 我的奖励 --------------------------------------------------------------------------------------

async function showRewards() {
  const list = $('rewards')
  list.innerHTML = '<li class="muted">加载中…</li>'
  const {items} = await api('GET', 'rewards?limit=50')
  list.innerHTML = items.length ? items.map((r) => `<li class="card">
      <div class="top"><span class="amount">${yuan(r.amount_fen)}</span>${badge(r.status, REWARD_LABELS[r.status])}</div>
      <div class="meta">报料 #${r.tip_id} 的奖励</div>
      ${r.status === 'sent' && r.redpacket ? `<button class="button redpack" data-open="${r.id}">领取红包</button>` : ''}
      ${r.status === 'waiting_confirm' && r.transfer ? `<button class="button redpack" data-confirm="${r.id}">确认收款</button>` : ''}
    </li>`).join('') : '<li class="muted">还没有奖励。报料被采纳后，奖励会出现在这里。</li>'
  for (const button of list.querySelectorAll('[data-open]')) {
    const reward = items.find((r) => String(r.id) === button.dataset.open)
    button.onclick = () => openRedpack(reward, button)
  }
  for (const button of list.querySelectorAll('[data-confirm]')) {
    const reward = items.find((r) => String(r.id) === button.dataset.confirm)
    button.onclick = () => confirmTransfer(reward, button)
  }
  showMessages()
}

// What wx.sendBizRedPacket does: WeChat checks the server-signed parameters, then the packet opens.
async function openRedpack(reward, button) {
  button.disabled = true
  try {
    await sandbox('POST', '/client/redpacks/open', {...reward.redpacket, openid: state.resident.openid})
    button.outerHTML = `<div class="message">红包已打开，${yuan(reward.amount_fen)} 已存入微信零钱</div>`
    toast(`领取成功 ${yuan(reward.amount_fen)}`)
  } catch (error) {
    button.disabled = false
    toast('领取失败：' + error.message, 3500)
  }
}

// What wx.requestMerchantTransfer does (商家转账): WeChat checks mchId, appId and the package the
// server handed over, the resident confirms, the money goes to their 零钱.
async function confirmTransfer(reward, button) {
  button.disabled = true
  try {
    await sandbox('POST', '/client/transfers/confirm', {...reward.transfer, openid: state.resident.openid})
    button.outerHTML = `<div class="message">已确认收款，${yuan(reward.amount_fen)} 已存入微信零钱</div>`
    toast(`收款成功 ${yuan(reward.amount_fen)}`)
  } catch (error) {
    button.disabled = false
    toast('收款失败：' + error.message, 3500)
  }
}

async function showMessages() {
  const list = $('messages')
  try {
    const {items} = await sandbox('GET', '/messages')
    const mine = items.filter((m) => m.openid === state.resident.openid).reverse()
    list.innerHTML = mine.length ? mine.map((m) => `<li class="card">
        <div>${Object.values(m.data).map((v) => esc(v.value)).join(' · ')}</div>
        <div class="meta">${esc(m.at ? m.at.replace('T', ' ').slice(0, 16) : '')}</div></li>`).join('')
      : '<li class="muted">暂无订阅消息</li>'
  } catch (error) {
    list.innerHTML = `<li class="muted">${esc(error.message)}</li>`
  }
}

// --- 我的 ------------------------------------------------------------------------------------------

function showMe() {
  $('me').innerHTML = `<div class="name">${esc(state.resident.name)}</div>
    <div class="meta">居民 #${esc(state.residentId)} · 演示微信号 ${esc(state.resident.openid)}</div>`
  $('export-out').hidden = true
}

async function exportData() {
  try {
    const data = await api('GET', 'me/export')
    const text = JSON.stringify(data, null, 2)
    $('export-json').textContent = text
    $('export-link').href = URL.createObjectURL(new Blob([text], {type: 'application/json'}))
    $('export-out').hidden = false
    toast('已导出您的全部数据')
  } catch (error) { toast(error.message) }
}

async function closeAccount() {
  if (!confirm('注销后无法恢复：您的微信身份将被删除，未发放的奖励将放弃。确定注销吗？')) return
  try {
    const answer = await api('DELETE', 'me', {retry: false})
    stored('token:' + state.resident.openid, null)
    stored('privacy:' + state.resident.openid, null)
    state.token = null
    $('login-state').textContent = `${state.resident.name} 的账号已注销`
    $('me').innerHTML = `<div class="message">${esc(answer.message)}</div>`
    $('export-out').hidden = true
    toast('账号已注销')
  } catch (error) { toast(error.message) }
}

// --- navigation ------------------------------------------------------------------------------------

async function go(view, arg) {
  for (const section of document.querySelectorAll('.view')) section.hidden = section.id !== 'view-' + view
  for (const tab of document.querySelectorAll('.tabs button')) {
    tab.classList.toggle('active', tab.dataset.go === view || (view === 'tip' && tab.dataset.go === 'tips'))
  }
  document.querySelector('main').scrollTop = 0
  // Leaflet measured the map while it was hidden (0×0) if the window changed size meanwhile
  if (view === 'report' && state.map) state.map.invalidateSize()
  try {
    if (!state.token && view !== 'report') await login()
    if (view === 'tips') await showTips()
    if (view === 'tip') await showTip(arg)
    if (view === 'rewards') await showRewards()
    if (view === 'me') showMe()
  } catch (error) { toast(error.message, 3500) }
}

async function switchResident(openid) {
  state.resident = RESIDENTS.find((r) => r.openid === openid) || RESIDENTS[0]
  stored('resident', state.resident.openid)
  state.token = null
  resetForm()
  try {
    await login()
    const current = document.querySelector('.tabs button.active')
    await go(current ? current.dataset.go : 'report')
    ensurePrivacy()
  } catch (error) {
    $('login-state').textContent = '登录失败：' + error.message
  }
}

async function start() {
  const select = $('resident')
  for (const r of RESIDENTS) select.append(new Option(r.name, r.openid))
  select.value = stored('resident') || RESIDENTS[0].openid
  select.onchange = () => switchResident(select.value)
  for (const button of document.querySelectorAll('[data-go]')) button.onclick = () => go(button.dataset.go)
  $('photo-input').onchange = (event) => { addPhotos([...event.target.files]); event.target.value = '' }
  $('category').onchange = checkNearby
  $('town').onchange = () => {
    if (!$('town').value) return
    const [lat, lng] = $('town').value.split(',').map(Number)
    setPlace(lat, lng, $('town').selectedOptions[0].text)
    state.map.setView([lat, lng], 12)
  }
  $('description').oninput = () => { $('count').textContent = `${$('description').value.length}/500` }
  $('submit').onclick = submitTip
  $('tips').onclick = (event) => {
    const card = event.target.closest('[data-tip]')
    if (card) go('tip', card.dataset.tip)
  }
  $('show-privacy').onclick = () => ensurePrivacy(true)
  $('export').onclick = exportData
  $('close-account').onclick = closeAccount
  await drawMap().catch(() => toast('地图加载失败'))
  await switchResident(select.value)
  await loadCategories().catch((error) => toast(error.message))
}

start()
