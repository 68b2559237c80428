// The reference mini-program's pages against the real server and the WeChat sandbox (started by
// tests/miniprogram/test_reference_miniprogram.py): a resident reads the privacy notice, sends a
// tip through lost replies, follows it, opens the red packet; a neighbour sees "附近已有人报过";
// tokens are renewed; the resident takes a copy of their data and closes the account.
const {describe, it, before} = require('node:test')
const assert = require('node:assert/strict')
const fs = require('fs')
const path = require('path')
const {shim, api, open, tap, text, texts, becomeUser, until, SRC, env} = require('./helpers/env')

const API = env.apiBase + '/api/mp/v1'
// 南城, Dongguan, as wx.getLocation reports it (GCJ-02); and a point in Beijing, outside the service area.
const HOME = {latitude: 23.01817751113494, longitude: 113.75699305913929}
const BEIJING = {latitude: 39.9087, longitude: 116.3975, name: '天安门', address: '北京市东城区'}
const PHOTOS = fs.readdirSync(process.env.PHOTO_DIR).sort().map(f => path.join(process.env.PHOTO_DIR, f))
const LPG = 'lpg_illegal'

async function http(method, url, {token, body} = {}) {
  const headers = {'content-type': 'application/json'}
  if (token) headers.Authorization = `Bearer ${token}`
  const res = await fetch(url, {method, headers, body: body ? JSON.stringify(body) : undefined})
  return {status: res.status, body: await res.json().catch(() => null)}
}

async function approveNextTip() {
  const login = await http('POST', `${env.apiBase}/api/staff/v1/auth/login`,
                           {body: {username: process.env.STAFF_USER, password: process.env.STAFF_PASSWORD}})
  const token = login.body.token
  const claimed = await http('POST', `${env.apiBase}/api/staff/v1/review/claim`, {token})
  assert.equal(claimed.status, 200)
  const decision = await http('POST', `${env.apiBase}/api/staff/v1/tips/${claimed.body.id}/decision`,
                              {token, body: {action: 'approve', category: LPG, severity: 2}})
  assert.equal(decision.status, 200, JSON.stringify(decision.body))
  return decision.body
}

async function pickPhoto(page, file) {
  shim.media = [file]
  page.instance.onChoosePhoto()
  await until(() => page.data.photos.includes(file), {interval: 10, what: 'the chosen photo'})
}

async function readyForm(page, description, photo = PHOTOS[0]) {
  await page.instance.onCategoryChange({detail: {value: page.data.categories.findIndex(c => c.code === LPG)}})
  shim.location = HOME
  await page.instance.onLocate()
  await pickPhoto(page, photo)
  page.instance.onDescription({detail: {value: description}})
}

async function agreePrivacy(page) {
  await tap(page, '.agree', 'agreeprivacyauthorization') // WeChat's privacy-agreement button
  assert.equal(page.data.privacy.show, false)
}

describe('the reference mini-program on the real server', () => {
  const state = {}

  before(() => becomeUser('o-mp-alice'))

  it('shows the privacy notice from the server before the first tip, and sends nothing until agreed', async () => {
    const page = await open('pages/report/index')
    const served = await http('GET', `${API}/privacy`)
    assert.equal(page.data.privacy.show, true)
    assert.equal(text(page, '.privacy-body'), served.body.text.trim())
    await readyForm(page, '楼下商铺后门堆着十几个液化气瓶')
    assert.equal(await page.instance.onSubmit(), null)
    assert.equal(shim.lastModal(), '请先阅读并同意《个人信息保护告知》')
    assert.equal(shim.named('uploadFile').length, 0)

    await agreePrivacy(page)
    assert.equal(shim.wx.getStorageSync('rrp.privacy.version'), served.body.version)
    const again = await open('pages/report/index')
    assert.equal(again.data.privacy.show, false)
    assert.ok(!again.querySelector('.privacy'))
  })

  it('sends a tip once though replies are lost on the way, asking for subscriptions in the tap first', async () => {
    const page = await open('pages/report/index')
    const names = texts(page, '.category')
    assert.equal(names[0], '请选择')
    assert.ok(page.data.categoryNames.some(n => n.startsWith('黑气')), 'categories come from the server')
    await readyForm(page, '楼下商铺后门堆着十几个液化气瓶')
    assert.deepEqual(page.data.nearby, []) // nobody reported it yet
    assert.equal(text(page, '.place'), '当前位置')

    shim.calls.length = 0
    shim.lostReplies.push({method: 'UPLOAD', match: '/photos', count: 1}, {method: 'POST', match: '/tips', count: 2})
    const tip = await page.instance.onSubmit()
    assert.ok(tip && tip.id, shim.lastModal() || 'no tip')
    state.tipId = tip.id

    const order = shim.calls.map(c => c[0])
    assert.ok(order.indexOf('requestSubscribeMessage') < order.indexOf('uploadFile'))
    assert.deepEqual(shim.named('requestSubscribeMessage')[0].tmplIds,
                     ['sbx-tpl-tip-result', 'sbx-tpl-hazard-closed', 'sbx-tpl-reward-sent'])
    assert.equal(shim.named('uploadFile').length, 2) // the first answer was lost
    const posts = shim.named('request').filter(r => r.method === 'POST' && r.url.endsWith('/tips'))
    assert.equal(posts.length, 3)
    assert.equal(new Set(posts.map(r => r.header['Idempotency-Key'])).size, 1) // one key for every retry
    assert.deepEqual(shim.named('navigateTo').map(n => n.url), [`/pages/tip/detail?id=${tip.id}`])

    const mine = await http('GET', `${API}/tips`, {token: api.currentSession().token})
    assert.deepEqual(mine.body.items.map(t => t.id), [tip.id]) // one tip, not three
    assert.equal(mine.body.items[0].photos.length, 1)
    assert.deepEqual(page.data.photos, []) // the form is empty for the next tip
  })

  it("shows the API's error messages as they are", async () => {
    const page = await open('pages/report/index')
    await readyForm(page, '外地的隐患')
    shim.chosenPlace = BEIJING
    await page.instance.onChooseLocation()
    assert.equal(await page.instance.onSubmit(), null)
    assert.equal(shim.lastModal(), '该位置不在服务范围内（仅限东莞市）')
  })

  it('lists the tip and shows its progress in the words the server uses', async () => {
    await until(async () => (await http('GET', `${API}/tips/${state.tipId}`, {token: api.currentSession().token}))
      .body.status === 'pending_review', {what: 'the intake checks'})
    const list = await open('pages/tips/index')
    assert.deepEqual(texts(list, '.status'), ['待审核'])
    assert.equal(text(list, '.category'), '黑气：非法储存、经营、运输液化石油气瓶')
    assert.match(text(list, '.time'), /^\d{4}-\d\d-\d\d \d\d:\d\d$/)
    await tap(list, '.tip')
    assert.equal(shim.named('navigateTo').pop().url, `/pages/tip/detail?id=${state.tipId}`)

    const detail = await open('pages/tip/detail', {id: String(state.tipId)})
    assert.equal(text(detail, '.status'), '待审核')
    assert.ok(texts(detail, '.step-note').includes('报料已提交，等待审核'))
    assert.match(text(detail, '.place'), /^\d+\.\d{5}, \d+\.\d{5}$/) // located by GPS: no address
    assert.ok(detail.querySelector('.withdraw'), 'an undecided tip can be withdrawn')
  })

  it('after approval a subscribe message opens the detail page, and the red packet opens on the phone', async () => {
    const decision = await approveNextTip()
    assert.equal(decision.tip.id, state.tipId)
    const page = await open('pages/rewards/index')
    await until(async () => { await page.instance.load(); return page.data.items[0] && page.data.items[0].claimable },
                {what: 'the red packet sent'})
    assert.equal(text(page, '.reward .status'), '待领取')
    assert.equal(text(page, '.amount'), '¥100.00')

    await tap(page, '.claim')
    await until(() => shim.named('showToast').some(t => t.title === '领取成功'), {interval: 50, what: 'the packet opened'})
    assert.equal(shim.named('sendBizRedPacket').length, 1)
    const packets = (await http('GET', `${env.sandboxUrl}/__sandbox__/redpacks`)).body.items
    assert.deepEqual(packets.map(p => [p.openid, p.status]), [['o-mp-alice', 'RECEIVED']])
    await until(async () => { await page.instance.load(); return page.data.items[0].status === 'claimed' },
                {what: 'the sweeper seeing it claimed'})
    assert.equal(text(page, '.claimed-total'), '¥100.00')
    assert.ok(!page.querySelector('.claim'))

    const messages = (await http('GET', `${env.sandboxUrl}/__sandbox__/messages`)).body.items
    const mine = messages.filter(m => m.openid === 'o-mp-alice')
    assert.ok(mine.length >= 1)
    const [pagePath, queryString] = mine[0].page.split('?')
    assert.equal(queryString, `id=${state.tipId}`)
    assert.ok(JSON.parse(fs.readFileSync(path.join(SRC, 'app.json'), 'utf8')).pages.includes(pagePath))

    const detail = await open('pages/tip/detail', {id: String(state.tipId)})
    assert.equal(text(detail, '.status'), '已采纳')
    assert.equal(text(detail, '.reward-status'), '已领取')
    assert.ok(text(detail, '.hazard-status'))
  })

  it('tells a neighbour the hazard is already reported, and lets them withdraw their own tip', async () => {
    becomeUser('o-mp-bob')
    const page = await open('pages/report/index')
    await agreePrivacy(page)
    await readyForm(page, '同一处的气瓶', PHOTOS[1])
    assert.equal(page.data.nearby.length, 1)
    assert.match(text(page, '.nearby'), /^附近已有人报过：\d+ 米外有同类隐患/)

    const nearby = await open('pages/nearby/index')
    await nearby.instance.onCategoryChange({detail: {value: nearby.data.categories.findIndex(c => c.code === LPG)}})
    assert.equal(texts(nearby, '.hazard').length, 1)
    assert.match(text(nearby, '.distance'), /米$/)

    const tip = await page.instance.onSubmit()
    assert.ok(tip && tip.id)
    const detail = await open('pages/tip/detail', {id: String(tip.id)})
    shim.modalAnswers.push(true)
    await detail.instance.onWithdraw()
    assert.equal(text(detail, '.status'), '已撤回')
    assert.ok(!detail.querySelector('.withdraw'))
  })

  it('logs in again when the token is refused or about to expire', async () => {
    becomeUser('o-mp-bob')
    shim.wx.setStorageSync('rrp.session', {token: 'rsd_refused', expiresAt: Date.now() + 3600e3})
    const list = await open('pages/tips/index')
    assert.equal(list.data.items.length, 1) // bob's withdrawn tip
    assert.equal(shim.named('login').length, 1)
    const renewed = api.currentSession().token
    assert.notEqual(renewed, 'rsd_refused')

    api.forgetSession()
    shim.wx.setStorageSync('rrp.session', {token: renewed, expiresAt: Date.now() + 1000}) // nearly expired
    await list.instance.load(true)
    assert.equal(shim.named('login').length, 2)
    const refused = shim.named('request').filter(r => r.header && r.header.Authorization === 'Bearer rsd_refused')
    assert.equal(refused.length, 1) // asked once with the bad token, then with a fresh one
  })

  it('gives the resident a copy of their data and closes the account', async () => {
    becomeUser('o-mp-alice')
    const me = await open('pages/me/index')
    await me.instance.onPrivacy()
    assert.ok(text(me, '.notice-text').includes('个人信息'))
    await me.instance.onExport()
    const copied = JSON.parse(shim.named('setClipboardData')[0].data)
    assert.equal(copied.profile.openid, 'o-mp-alice')
    assert.deepEqual(copied.tips.map(t => t.id), [state.tipId])
    assert.equal(copied.rewards[0].status, 'claimed')
    assert.match(text(me, '.exported'), /^已复制：1 条报料、1 条奖励记录/)

    shim.modalAnswers.push(false) // changes their mind first
    await me.instance.onClose()
    assert.equal(shim.named('request').filter(r => r.method === 'DELETE').length, 0)
    shim.modalAnswers.push(true)
    await me.instance.onClose()
    assert.match(shim.named('showModal').pop().content, /^注销后无法恢复/) // no packet left to warn about
    assert.equal(text(me, '.closed'), '账号已注销')

    const list = await open('pages/tips/index') // the same WeChat user: a new, empty account
    assert.deepEqual(list.data.items, [])
    assert.ok(list.querySelector('.empty'))
  })

  it('hands a transfer reward to wx.requestMerchantTransfer with its parameters', async () => {
    // Client side only: the server has no transfer channel yet (docs/API.md, Planned).
    const page = await open('pages/rewards/index')
    let seen = null
    shim.merchantTransfer = options => { seen = options; return 'requestMerchantTransfer:ok' }
    await page.instance.claim({id: 1, status: 'waiting_confirm',
                               transfer: {mch_id: '1900000109', app_id: 'wxsandbox0000000001', package: 'ABC123'}})
    assert.deepEqual([seen.mchId, seen.appId, seen.package], ['1900000109', 'wxsandbox0000000001', 'ABC123'])
  })
})
