// What residents read: Beijing time, yuan, and the Chinese names of statuses.

// Reward statuses (the API may add `status_label`; that wins when present).
const REWARD_LABELS = {
  reserved: '发放准备中',
  sending: '发放中',
  sent: '待领取',
  waiting_confirm: '待确认收款',
  claimed: '已领取',
  refunded: '已退回（超过24小时未领取）',
  failed: '发放失败',
  cancelled: '已取消',
  manual_review: '人工核对中',
}

// Ticket statuses, for answers that carry no `status_label`.
const HAZARD_LABELS = {
  reported: '已上报', dispatched: '已分拨', accepted: '已受理', handling: '处置中', resolved: '已处置',
  verified: '已核查', closed: '已结案', returned: '已退回', reopened: '重新处置',
}

function pad(n) {
  return n < 10 ? '0' + n : String(n)
}

// ISO-8601 with offset → "2026-12-05 14:03" in Beijing time, whatever the phone's time zone.
function beijingTime(iso) {
  if (!iso) return ''
  const ms = Date.parse(iso)
  if (Number.isNaN(ms)) return ''
  const d = new Date(ms + 8 * 3600 * 1000)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
}

function yuan(fen) {
  return '¥' + (Number(fen || 0) / 100).toFixed(2)
}

function rewardLabel(reward) {
  return reward.status_label || REWARD_LABELS[reward.status] || reward.status
}

function hazardLabel(hazard) {
  return hazard.status_label || HAZARD_LABELS[hazard.status] || hazard.status
}

function distance(meters) {
  return meters >= 1000 ? (meters / 1000).toFixed(1) + ' 公里' : Math.round(meters) + ' 米'
}

module.exports = {beijingTime, yuan, rewardLabel, hazardLabel, distance, REWARD_LABELS, HAZARD_LABELS}
