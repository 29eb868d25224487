// OpenSSL's libcrypto, loaded by the first SHA-256 (identity.cpp) instead of
// at every start: linked in, it binds about 4,000 symbols before main, the
// largest share of what `capaudit report --binary` spent before reading
// anything (issue 14), though only hashing a file uses it. These are the
// entry points Sha256 calls (lazy_library.h).
#include "lazy_library.h"

#include <openssl/evp.h>

namespace {
capaudit::LazyLibrary libcrypto("libcrypto.so.3", "the OpenSSL library");
}

#define CAPAUDIT_LIBCRYPTO(ret, name, params, args) CAPAUDIT_LAZY(libcrypto, ret, name, params, args)

CAPAUDIT_LIBCRYPTO(EVP_MD_CTX*, EVP_MD_CTX_new, (void), ())
CAPAUDIT_LIBCRYPTO(void, EVP_MD_CTX_free, (EVP_MD_CTX * ctx), (ctx))
CAPAUDIT_LIBCRYPTO(const EVP_MD*, EVP_sha256, (void), ())
CAPAUDIT_LIBCRYPTO(int, EVP_DigestInit_ex, (EVP_MD_CTX * ctx, const EVP_MD* type, ENGINE* impl), (ctx, type, impl))
CAPAUDIT_LIBCRYPTO(int, EVP_DigestUpdate, (EVP_MD_CTX * ctx, const void* d, size_t cnt), (ctx, d, cnt))
CAPAUDIT_LIBCRYPTO(int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char* md, unsigned int* s), (ctx, md, s))
