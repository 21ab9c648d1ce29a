// CZMQ: a thin shim over libzmq (the C library from Debian's libzmq3-dev), NOT the czmq library.
// Only the Swift module MeshZMQ imports it.
#ifndef MURMUR_CZMQ_SHIM_H
#define MURMUR_CZMQ_SHIM_H
#include <zmq.h>

// libzmq 4.3.4 hides this option behind ZMQ_BUILD_DRAFT_API in its header, but the library accepts it.
// Without it, a CURVE server whose ZAP handler is missing admits any client key.
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

// Error numbers libzmq defines as expressions (ZMQ_HAUSNUMERO + n); functions keep Swift's importer
// out of macro arithmetic.
static inline int murmur_zmq_eterm(void) { return ETERM; }
static inline int murmur_zmq_eaddrinuse(void) { return EADDRINUSE; }
static inline int murmur_zmq_emsgsize(void) { return EMSGSIZE; }

#endif
