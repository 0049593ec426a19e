// Preloaded into elasticdump (node --require) by the bench. elasticdump learns
// the server's version from `GET /`, which the local Elasticsearch cannot
// answer: its integ-test-zip distribution has no rest-root module (README,
// "What this Elasticsearch distribution lacks"). This sets the version the
// bench read from the nodes API (BENCH_ES_VERSION) exactly where elasticdump
// would have set it after `GET /`; no other request or behaviour changes.
'use strict'
const fs = require('fs')
const path = require('path')

const version = process.env.BENCH_ES_VERSION
if (version) {
  const bin = fs.realpathSync(process.argv[1])
  const Base = require(path.join(path.dirname(bin), '..', 'lib', 'transports', '__es__', '_base.js'))
  Base.prototype.version = function (prefix, callback) {
    if (!this.ESversion) {
      this.ESFullversion = version
      this.ESversion = version.split('.')[0]
      this.ESDistribution = 'elasticsearch'
      this.DistributionVersion = version
      this.IsOpenSearch = false
      this.setSearchBody()
    }
    callback()
  }
}
