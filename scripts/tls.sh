#!/usr/bin/env bash
# TLS for the local stack: a CA of this clone, a certificate it signs for 127.0.0.1 and localhost
# that PostgreSQL and the TLS Elasticsearch node serve, and a client certificate for the
# PostgreSQL role archivist_tls_client (mutual TLS). Made with openssl under .local/tls/, once;
# made again only when missing, not signed by the CA, or within 30 days of expiry. Private keys
# are 0600: the CA's and the client's stay with this user, the server's goes to the service user,
# who runs the servers.
#
#   bash scripts/tls.sh certs       the CA, the server and the client certificate (services.sh runs it)
#   bash scripts/tls.sh ca DIR      another CA in DIR (ca.crt, ca.key) and a client certificate it
#                                   signed (client.crt, client.key), for tests of a wrong CA
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TLS_DIR="$LOCAL/tls"
TLS_CA="$TLS_DIR/ca.crt"
TLS_CERT="$TLS_DIR/server.crt"
TLS_KEY="$TLS_DIR/server.key"
TLS_DAYS=825  # the longest validity clients accept for a server certificate
TLS_CLIENT_ROLE="archivist_tls_client"  # logs in to PostgreSQL with its certificate alone

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

# A key and a certificate signed by the CA in CA_DIR: DIR/NAME.key (0600) and DIR/NAME.crt.
make_cert() {  # CA_DIR DIR NAME SUBJECT EXTENSIONS...
  local ca_dir="$1" dir="$2" name="$3" subject="$4" ext="$2/$3.ext" csr="$2/$3.csr"
  shift 4
  printf '%s\n' "basicConstraints=CA:FALSE" "$@" > "$ext"
  rm -f "$dir/$name.key"
  ( umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" )
  openssl req -new -key "$dir/$name.key" -subj "$subject" -out "$csr"
  openssl x509 -req -in "$csr" -CA "$ca_dir/ca.crt" -CAkey "$ca_dir/ca.key" -CAcreateserial -sha256 \
    -days "$TLS_DAYS" -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$csr" "$ext"
  chmod 0644 "$dir/$name.crt"
}

cert_is_good() {  # NAME
  [ -f "$TLS_DIR/$1.key" ] && [ -f "$TLS_DIR/$1.crt" ] \
    && openssl verify -CAfile "$TLS_CA" "$TLS_DIR/$1.crt" >/dev/null 2>&1 \
    && openssl x509 -in "$TLS_DIR/$1.crt" -noout -checkend $((30 * 86400)) >/dev/null 2>&1
}

# A client certificate for the PostgreSQL role TLS_CLIENT_ROLE, whose pg_hba line asks for one.
make_client_cert() {  # CA_DIR DIR
  make_cert "$1" "$2" client "/CN=$TLS_CLIENT_ROLE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth"
}

# The CA (when missing), and the server and client certificates (when not good).
ensure_tls_certs() {
  mkdir -p "$TLS_DIR"
  chmod 0755 "$TLS_DIR"  # the service user reads the certificates here
  if [ ! -f "$TLS_CA" ] || [ ! -f "$TLS_DIR/ca.key" ]; then
    log "making the local CA in $TLS_DIR"
    make_ca "$TLS_DIR" "archivist local CA"
  fi
  if ! cert_is_good server; then
    log "making the server certificate for $BIND and localhost in $TLS_DIR"
    make_cert "$TLS_DIR" "$TLS_DIR" server "/CN=localhost" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectAltName=IP:$BIND,DNS:localhost"
  fi
  if ! cert_is_good client; then
    make_client_cert "$TLS_DIR" "$TLS_DIR"
  fi
  chmod 0600 "$TLS_KEY" "$TLS_DIR/ca.key" "$TLS_DIR/client.key"
  # PostgreSQL refuses a key that its own user does not own (or that others may read).
  if [ "$(id -u)" = 0 ]; then chown "$SERVICE_USER" "$TLS_KEY"; fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    certs) ensure_tls_certs ;;
    ca) make_ca "${2:?usage: tls.sh ca DIR}" "archivist other CA"; make_client_cert "$2" "$2" ;;
    *) die "usage: tls.sh certs | tls.sh ca DIR" ;;
  esac
fi
