// What a city changes before shipping (see miniprogram/README.md).
module.exports = {
  // The residents' API of the city's server (a domain listed under 开发管理 → 服务器域名 → request/uploadFile).
  apiBase: 'https://renrenpai.example.gov.cn/api/mp/v1',
  // Subscribe-message template ids, the same as the server's WECHAT_TEMPLATE_* (订阅消息 → 我的模板).
  // Empty ones are not asked for.
  templates: {
    tip_result: '',
    hazard_closed: '',
    reward_sent: '',
  },
  // Retries of a request lost on the way (network errors, 5xx, 429); the same Idempotency-Key every time.
  retries: 3,
  retryDelayMs: 800,
}
