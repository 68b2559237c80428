// The test environment: a DOM (jsdom) for miniprogram-simulate, the `wx` shim, and the mini-program's
// config pointed at the server and sandbox that the pytest side started (API_BASE, SANDBOX_URL).
const path = require('path')
const {JSDOM} = require('jsdom')
const {createShim} = require('./wx-shim')

const SRC = path.resolve(__dirname, '../../src')

function required(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: run these tests through tests/miniprogram (pytest), which starts the server`)
  return value
}

const dom = new JSDOM('<!doctype html><html><head></head><body></body></html>', {pretendToBeVisual: true})
global.window = dom.window
global.document = dom.window.document
// Node has its own Event classes; the DOM's must win, or jsdom refuses the events it is handed.
for (const name of ['Node', 'Element', 'HTMLElement', 'Event', 'CustomEvent', 'TouchEvent', 'MutationObserver',
                    'getComputedStyle', 'requestAnimationFrame']) {
  global[name] = dom.window[name]
}

const shim = createShim({sandboxUrl: required('SANDBOX_URL')})
global.wx = shim.wx // before miniprogram-simulate, which keeps what is already there
global.getApp = () => ({})
const simulate = require('miniprogram-simulate')

const config = require(path.join(SRC, 'config'))
config.apiBase = required('API_BASE') + '/api/mp/v1'
config.retryDelayMs = 50
Object.assign(config.templates, JSON.parse(process.env.TEMPLATES || '{}'))

const api = require(path.join(SRC, 'utils/api'))

// Load a page (a Component-built page, as WeChat allows), render it with WeChat's own WXML
// compiler, attach it, and run onLoad(query) and onShow as WeChat would.
async function open(page, query = {}) {
  const id = simulate.load(path.join(SRC, page), {rootPath: SRC})
  const comp = simulate.render(id)
  comp.attach(document.createElement('parent-wrapper'))
  if (comp.instance.onLoad) await comp.instance.onLoad(query)
  if (comp.instance.onShow) await comp.instance.onShow()
  return comp
}

// Tap an element (the framework calls its handler); `settle` waits for what the handler started.
async function tap(comp, selector, eventName = 'tap') {
  const node = comp.querySelector(selector)
  if (!node) throw new Error(`nothing matches ${selector}`)
  node.dispatchEvent(eventName)
  await simulate.sleep(0)
}

function text(comp, selector) {
  const node = comp.querySelector(selector)
  return node ? node.dom.textContent.trim() : null
}

function texts(comp, selector) {
  return comp.querySelectorAll(selector).map(node => node.dom.textContent.trim())
}

// Switch the phone to another WeChat user (a fresh install of the mini-program).
function becomeUser(openid) {
  api.forgetSession()
  shim.reset(openid)
}

// Generous: on a loaded CI machine the outbox relay and the payout worker can take a minute or more.
async function until(probe, {timeout = 180000, interval = 500, what = 'condition'} = {}) {
  const deadline = Date.now() + timeout
  let last
  while (Date.now() < deadline) {
    last = await probe()
    if (last) return last
    await simulate.sleep(interval)
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`)
}

module.exports = {shim, simulate, config, api, open, tap, text, texts, becomeUser, until, SRC,
                  env: {apiBase: required('API_BASE'), sandboxUrl: required('SANDBOX_URL')}}
