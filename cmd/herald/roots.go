package main

// The image is FROM scratch: it has no /etc/ssl/certs. This package makes
// crypto/x509 fall back to the Mozilla root set compiled into the binary
// when the system has none, so HTTPS to email, WhatsApp and webhook
// providers verifies without anything from a base image. Where the system
// has roots (a development machine, or a cluster that mounts its own CA
// bundle at SSL_CERT_FILE), those are used.
import _ "golang.org/x/crypto/x509roots/fallback"
