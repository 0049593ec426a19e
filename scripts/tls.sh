#!/usr/bin/env bash
# TLS for the local stack: a CA of this clone, and a certificate it signs for 127.0.0.1 and
# localhost that PostgreSQL and the TLS Elasticsearch node serve. Made with openssl under
# .local/tls/, once; made again only when missing, not signed by the CA, or within 30 days of
# expiry. Private keys are 0600: the CA's stays with this user, the server's goes to the service
# user, who runs the servers.
#
#   bash scripts/tls.sh certs       the CA and the server certificate (services.sh runs it)
#   bash scripts/tls.sh ca DIR      another CA in DIR (ca.crt, ca.key), for tests of a wrong CA
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TLS_DIR="$LOCAL/tls"
TLS_CA="$TLS_DIR/ca.crt"
TLS_CERT="$TLS_DIR/server.crt"
TLS_KEY="$TLS_DIR/server.key"
TLS_DAYS=825  # the longest validity clients accept for a server certificate

# A self-signed CA in DIR (ca.key 0600, ca.crt), named NAME.
make_ca() {  # DIR NAME
  local dir="$1" name="$2"
  mkdir -p "$dir"
  ( umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" )
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=$name" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.crt"
  chmod 0644 "$dir/ca.crt"
}

server_cert_is_good() {
  [ -f "$TLS_KEY" ] && [ -f "$TLS_CERT" ] \
    && openssl verify -CAfile "$TLS_CA" "$TLS_CERT" >/dev/null 2>&1 \
    && openssl x509 -in "$TLS_CERT" -noout -checkend $((30 * 86400)) >/dev/null 2>&1
}

# The CA (when missing) and the server certificate for 127.0.0.1 and localhost (when not good).
ensure_tls_certs() {
  mkdir -p "$TLS_DIR"
  chmod 0755 "$TLS_DIR"  # the service user reads the certificates here
  if [ ! -f "$TLS_CA" ] || [ ! -f "$TLS_DIR/ca.key" ]; then
    log "making the local CA in $TLS_DIR"
    make_ca "$TLS_DIR" "archivist local CA"
  fi
  if ! server_cert_is_good; then
    log "making the server certificate for $BIND and localhost in $TLS_DIR"
    local ext="$TLS_DIR/server.ext" csr="$TLS_DIR/server.csr"
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectAltName=IP:$BIND,DNS:localhost" > "$ext"
    rm -f "$TLS_KEY"
    ( umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TLS_KEY" )
    openssl req -new -key "$TLS_KEY" -subj "/CN=localhost" -out "$csr"
    openssl x509 -req -in "$csr" -CA "$TLS_CA" -CAkey "$TLS_DIR/ca.key" -CAcreateserial -sha256 \
      -days "$TLS_DAYS" -extfile "$ext" -out "$TLS_CERT"
    rm -f "$csr" "$ext"
    chmod 0644 "$TLS_CERT"
  fi
  chmod 0600 "$TLS_KEY" "$TLS_DIR/ca.key"
  # PostgreSQL refuses a key that its own user does not own (or that others may read).
  if [ "$(id -u)" = 0 ]; then chown "$SERVICE_USER" "$TLS_KEY"; fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    certs) ensure_tls_certs ;;
    ca) make_ca "${2:?usage: tls.sh ca DIR}" "archivist other CA" ;;
    *) die "usage: tls.sh certs | tls.sh ca DIR" ;;
  esac
fi
