/* The low-level SHA256_* block functions are used on purpose (see SHA256 in Hash.swift). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
/* RFC 3161 time-stamp tokens: parsed and verified with OpenSSL's TS and CMS code. */
#include <openssl/ts.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
