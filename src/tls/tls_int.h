/*
 * tls_int.h - what src/tls/ shares with its tests and fuzz targets only.
 */
#ifndef MOTE_TLS_INT_H
#define MOTE_TLS_INT_H

#include <openssl/bio.h>

#include "tls/tls.h"

/*
 * A server stream over BIOs instead of a socket (fd -1): the fuzz target
 * feeds a ClientHello from memory. Takes both BIOs (also on failure).
 */
enum mote_err tls_stream_server_bio(struct tls_server *srv, struct net_stream *s, BIO *rbio,
				    BIO *wbio);

#endif
