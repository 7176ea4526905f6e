#include "auth/report_sig.h"

#include "auth/report_mac.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads exactly n bytes or fails: a short key file is a broken one. */
static bool read_all(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    unsigned char extra;
    return read(fd, &extra, 1) == 0;
}

static lb_err identity_create(const char *path, unsigned char seed[32], lb_errmsg *em)
{
    randombytes_buf(seed, 32);
    /* O_EXCL: two agents racing on one path must not end with different keys */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return lb_fail(em, LB_ESYS, "identity key %s: cannot create: %s", path, strerror(errno));
    bool ok = write(fd, seed, 32) == 32 && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = false;
    if (!ok) {
        unlink(path);
        return lb_fail(em, LB_ESYS, "identity key %s: cannot write: %s", path, strerror(errno));
    }
    return LB_OK;
}

lb_err auth_identity_load(const char *path, bool create, unsigned char sk[AUTH_SK_BYTES],
                          unsigned char pk[AUTH_PK_BYTES], lb_errmsg *em)
{
    unsigned char seed[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        lb_err err = identity_create(path, seed, em);
        if (err != LB_OK)
            return err;
    } else if (fd < 0) {
        return lb_fail(em, LB_ESYS, "identity key %s: %s", path, strerror(errno));
    } else {
        bool ok = read_all(fd, seed, sizeof seed);
        close(fd);
        if (!ok)
            return lb_fail(em, LB_EINVAL, "identity key %s: not a 32-byte Ed25519 seed", path);
    }
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(seed, sizeof seed);
    return LB_OK;
}

/* mkdir -p of path's directory, 0700 (it holds a secret key); then the
 * directory must be ours and writable by no one else: a default under a
 * shared $TMPDIR that another user made first could hold a key they know. */
static lb_err make_parent(const char *path, lb_errmsg *em)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return LB_OK;
    *slash = '\0';
    for (char *p = strchr(dir + 1, '/');; p = strchr(p + 1, '/')) {
        if (p != NULL)
            *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return lb_fail(em, LB_ESYS, "identity key %s: cannot create %s: %s", path, dir,
                           strerror(errno));
        if (p == NULL)
            break;
        *p = '/';
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 022) != 0)
        return lb_fail(em, LB_ESYS,
                       "identity key %s: %s is not a directory owned by uid %d and writable "
                       "only by it",
                       path, dir, (int)geteuid());
    return LB_OK;
}

lb_err auth_identity_open(const char *configured, const char *default_path,
                          unsigned char sk[AUTH_SK_BYTES], unsigned char pk[AUTH_PK_BYTES],
                          lb_errmsg *em)
{
    if (auth_init() != 0)
        return lb_fail(em, LB_ESYS, "libsodium cannot start");
    if (configured != NULL && configured[0] != '\0')
        return auth_identity_load(configured, false, sk, pk, em);
    lb_err err = make_parent(default_path, em);
    return err != LB_OK ? err : auth_identity_load(default_path, true, sk, pk, em);
}

/* A message packed with its signature (and, for ServerLoad, MACs) empty:
 * into buf when it fits in cap, else a malloc'd buffer the caller frees;
 * NULL on allocation failure. */
typedef unsigned char *(*pack_unsigned_fn)(const void *msg, unsigned char *buf, size_t cap,
                                           size_t *len);

static unsigned char *server_pack_unsigned(const void *msg, unsigned char *buf, size_t cap,
                                           size_t *len)
{
    return auth_report_pack_unsigned(msg, buf, cap, len);
}

static unsigned char *slave_pack_unsigned(const void *msg, unsigned char *buf, size_t cap,
                                          size_t *len)
{
    Lb__SlaveLoad tmp = *(const Lb__SlaveLoad *)msg;
    tmp.sig.data = NULL;
    tmp.sig.len = 0;
    *len = lb__slave_load__get_packed_size(&tmp);
    unsigned char *out = *len <= cap ? buf : malloc(*len);
    if (out != NULL)
        lb__slave_load__pack(&tmp, out);
    return out;
}

/* Signs what pack makes of msg into sig_buf and points sig at it. */
static lb_err sign_with(pack_unsigned_fn pack, const void *msg, ProtobufCBinaryData *sig,
                        const unsigned char sk[AUTH_SK_BYTES],
                        unsigned char sig_buf[AUTH_SIG_BYTES])
{
    unsigned char stack[1024];
    size_t len = 0;
    unsigned char *buf = pack(msg, stack, sizeof stack, &len);
    if (buf == NULL)
        return LB_ENOMEM;
    crypto_sign_detached(sig_buf, NULL, buf, len, sk);
    if (buf != stack)
        free(buf);
    sig->data = sig_buf;
    sig->len = AUTH_SIG_BYTES;
    return LB_OK;
}

static bool verify_with(pack_unsigned_fn pack, const void *msg, const ProtobufCBinaryData *sig,
                        const unsigned char *pk, size_t pk_len)
{
    if (pk_len != AUTH_PK_BYTES || sig->len != AUTH_SIG_BYTES)
        return false;
    unsigned char stack[1024];
    size_t len = 0;
    unsigned char *buf = pack(msg, stack, sizeof stack, &len);
    if (buf == NULL)
        return false;
    bool ok = crypto_sign_verify_detached(sig->data, buf, len, pk) == 0;
    if (buf != stack)
        free(buf);
    return ok;
}

lb_err auth_report_sign(Lb__ServerLoad *l, const unsigned char sk[AUTH_SK_BYTES],
                        unsigned char sig_buf[AUTH_SIG_BYTES])
{
    return sign_with(server_pack_unsigned, l, &l->sig, sk, sig_buf);
}

bool auth_report_verify(const Lb__ServerLoad *l, const unsigned char *pk, size_t pk_len)
{
    return verify_with(server_pack_unsigned, l, &l->sig, pk, pk_len);
}

lb_err auth_slave_load_sign(Lb__SlaveLoad *l, const unsigned char sk[AUTH_SK_BYTES],
                            unsigned char sig_buf[AUTH_SIG_BYTES])
{
    return sign_with(slave_pack_unsigned, l, &l->sig, sk, sig_buf);
}

bool auth_slave_load_verify(const Lb__SlaveLoad *l, const unsigned char *pk, size_t pk_len)
{
    return verify_with(slave_pack_unsigned, l, &l->sig, pk, pk_len);
}
