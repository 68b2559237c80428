// 报料: photos, place, category, description. The privacy notice comes first (once per version);
// the subscribe-message question comes with the tap on 提交 (WeChat allows it only in a tap).
const api = require('../../utils/api')
const config = require('../../config')
const format = require('../../utils/format')

const PRIVACY_KEY = 'rrp.privacy.version'
const MAX_PHOTOS = 9

function emptyDraft() {
  // key: the Idempotency-Key of this tip, kept across retries until the tip is in (or the form
  // changes: another tip); uploaded: photo path → id, so a retry does not upload again.
  return {key: null, uploaded: {}}
}

Component({
  data: {
    privacy: {show: false, version: '', text: ''},
    categories: [],
    categoryNames: [],
    categoryIndex: -1,
    photos: [],
    location: null,
    placeText: '点击选择',
    description: '',
    nearby: [],
    busy: false,
  },

  methods: {
    onLoad() {
      this.draft = emptyDraft()
      return Promise.all([this.loadPrivacy(), this.loadCategories()])
    },

    // --- privacy notice -------------------------------------------------------------------------
    async loadPrivacy() {
      try {
        const notice = await api.privacy()
        const accepted = wx.getStorageSync(PRIVACY_KEY) === notice.version
        this.setData({privacy: {show: !accepted, version: notice.version, text: notice.text}})
      } catch (error) {
        // Without the notice no tip may go: show it as soon as it can be fetched.
        this.setData({privacy: {show: true, version: '', text: '个人信息保护告知加载失败，请检查网络后重新进入本页。'}})
      }
    },

    onAgreePrivacy() {
      if (!this.data.privacy.version) return
      wx.setStorageSync(PRIVACY_KEY, this.data.privacy.version)
      this.setData({'privacy.show': false})
    },

    onDeclinePrivacy() {
      wx.showModal({title: '提示', content: '同意《个人信息保护告知》后才能报料；您仍可浏览附近的隐患。', showCancel: false})
    },

    privacyAccepted() {
      return !!this.data.privacy.version && wx.getStorageSync(PRIVACY_KEY) === this.data.privacy.version
    },

    // --- the form ---------------------------------------------------------------------------------
    async loadCategories() {
      try {
        const {items} = await api.categories()
        this.setData({categories: items, categoryNames: items.map(c => c.name)})
      } catch (error) {
        api.showError(error)
      }
    },

    changed(values) {
      this.draft.key = null // another tip now
      this.setData(values)
    },

    onChoosePhoto() {
      const room = MAX_PHOTOS - this.data.photos.length
      if (room <= 0) return
      wx.chooseMedia({
        count: room, mediaType: ['image'], sourceType: ['camera', 'album'], sizeType: ['compressed'],
        success: res => this.changed({photos: this.data.photos.concat(res.tempFiles.map(f => f.tempFilePath))}),
      })
    },

    onRemovePhoto(event) {
      const photos = this.data.photos.slice()
      photos.splice(Number(event.currentTarget.dataset.index), 1)
      this.changed({photos})
    },

    onCategoryChange(event) {
      this.changed({categoryIndex: Number(event.detail.value)})
      return this.checkNearby()
    },

    onLocate() {
      return new Promise(resolve => wx.getLocation({
        type: 'gcj02',
        success: res => {
          this.setPlace({lat: res.latitude, lng: res.longitude, name: '当前位置', address: null})
          resolve(this.checkNearby())
        },
        fail: () => {
          wx.showModal({title: '提示', content: '无法获取位置，请在设置中允许使用位置信息，或点击“位置”在地图上选择。', showCancel: false})
          resolve()
        },
      }))
    },

    onChooseLocation() {
      const here = this.data.location
      return new Promise(resolve => wx.chooseLocation({
        ...(here ? {latitude: here.lat, longitude: here.lng} : {}),
        success: res => {
          this.setPlace({lat: res.latitude, lng: res.longitude, name: res.name, address: res.address || res.name})
          resolve(this.checkNearby())
        },
        fail: () => resolve(),
      }))
    },

    setPlace(location) {
      this.changed({location, placeText: location.name || location.address || '已选择'})
    },

    onDescription(event) {
      this.changed({description: event.detail.value})
    },

    // "附近已有人报过": open tickets of the same category near the place.
    async checkNearby() {
      const category = this.data.categories[this.data.categoryIndex]
      const place = this.data.location
      if (!category || !place) return
      try {
        const {items} = await api.nearby(place.lat, place.lng, category.code)
        this.setData({nearby: items.map(h => ({id: h.id, distance: format.distance(h.distance_m),
                                               label: format.hazardLabel(h)}))})
      } catch (error) {
        this.setData({nearby: []}) // only a hint: never in the way of a tip
      }
    },

    // --- sending ------------------------------------------------------------------------------------
    missing() {
      if (!this.data.photos.length) return '请至少拍一张照片'
      if (this.data.categoryIndex < 0) return '请选择隐患类别'
      if (!this.data.location) return '请选择位置'
      return null
    },

    askForSubscriptions() {
      const ids = [config.templates.tip_result, config.templates.hazard_closed, config.templates.reward_sent]
        .filter(Boolean)
      if (ids.length) wx.requestSubscribeMessage({tmplIds: ids, fail: () => {}}) // a "no" never stops the tip
    },

    onSubmit() {
      if (this.data.busy) return null
      if (!this.privacyAccepted()) {
        this.setData({'privacy.show': true})
        wx.showModal({title: '提示', content: '请先阅读并同意《个人信息保护告知》', showCancel: false})
        return null
      }
      const missing = this.missing()
      if (missing) {
        wx.showToast({title: missing, icon: 'none'})
        return null
      }
      this.askForSubscriptions() // first, inside the tap
      return this.send()
    },

    async send() {
      this.setData({busy: true})
      wx.showLoading({title: '提交中', mask: true})
      const draft = this.draft
      try {
        if (!draft.key) draft.key = api.newIdempotencyKey()
        const photoIds = []
        for (const path of this.data.photos) {
          if (!draft.uploaded[path]) draft.uploaded[path] = (await api.uploadPhoto(path)).id
          photoIds.push(draft.uploaded[path])
        }
        const place = this.data.location
        const tip = await api.submitTip({
          category: this.data.categories[this.data.categoryIndex].code,
          description: this.data.description.trim(),
          location: {lat: place.lat, lng: place.lng, coord: 'gcj02', address: place.address || null},
          photo_ids: photoIds,
        }, draft.key)
        this.draft = emptyDraft()
        this.setData({photos: [], description: '', nearby: [], busy: false})
        wx.hideLoading()
        wx.showToast({title: '报料成功', icon: 'success'})
        wx.navigateTo({url: `/pages/tip/detail?id=${tip.id}`})
        return tip
      } catch (error) {
        this.setData({busy: false})
        wx.hideLoading()
        api.showError(error)
        return null
      }
    },
  },
})
