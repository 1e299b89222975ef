// Package heraldinbox holds the <herald-inbox> web component
// (herald-inbox.js, a plain ES module) so that Go programs can serve it;
// `herald dev` hosts its inbox page with it.
package heraldinbox

import "embed"

// FS holds herald-inbox.js.
//
//go:embed herald-inbox.js
var FS embed.FS
