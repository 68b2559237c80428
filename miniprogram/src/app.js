App({
  onLaunch() {
    // Nothing to do up front: the API module logs in on the first call that needs it.
  },
})
