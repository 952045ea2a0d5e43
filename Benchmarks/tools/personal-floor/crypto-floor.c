// The personal work of committed entries at its floor, in C with OpenSSL and nothing else, as
// format 3 does it (format-spec §5.4.1): for each subject of an entry a 16-byte nonce (from 4 KiB
// drawn at once), one commitment of its values, SHA-256(0x00 || nonce || value) for one value or
// SHA-256(0x02 || nonce || (pathLen path valueLen value)*) for more, and its base64url; its key
// (a hash table; a new subject gets 32 random bytes) and its row, (pathLen path nonce valueLen
// value)*, under AES-256-CTR with that key from a random iv. Digest and cipher are fetched once and their contexts kept.
// It prints the nanoseconds an entry over FIELDS (fields.py's output), twice: the first pass
// makes every subject's key, the second finds them.
//
//   python3 fields.py /tmp/ev1m.ndjson 300000 > /tmp/fields.txt
//   gcc -O2 -o /tmp/crypto-floor crypto-floor.c -lcrypto && /tmp/crypto-floor /tmp/fields.txt
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS (1 << 17)
struct key { char subject[64]; unsigned char secret[32]; int used; };
static struct key table[SLOTS];

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    return h;
}

static struct key *lookup(const char *s, size_t n) {
    if (n >= sizeof table[0].subject) { fprintf(stderr, "subject too long\n"); exit(1); }
    for (uint64_t h = fnv(s, n) & (SLOTS - 1);; h = (h + 1) & (SLOTS - 1)) {
        struct key *k = &table[h];
        if (!k->used) {
            memcpy(k->subject, s, n);
            k->subject[n] = 0;
            if (RAND_bytes(k->secret, 32) != 1) { fprintf(stderr, "RAND_bytes failed\n"); exit(1); }
            k->used = 1;
            return k;
        }
        if (strlen(k->subject) == n && memcmp(k->subject, s, n) == 0) return k;
    }
}

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static size_t base64url(const unsigned char *in, size_t n, char *out) {
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18]; out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63]; out[o++] = alphabet[v & 63];
    }
    if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18]; out[o++] = alphabet[(v >> 12) & 63]; out[o++] = alphabet[(v >> 6) & 63];
    } else if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18]; out[o++] = alphabet[(v >> 12) & 63];
    }
    return o;
}

static unsigned char pool[4096];
static size_t drawn = sizeof pool;
static unsigned char *random16(void) {
    if (drawn + 16 > sizeof pool) {
        if (RAND_bytes(pool, sizeof pool) != 1) { fprintf(stderr, "RAND_bytes failed\n"); exit(1); }
        drawn = 0;
    }
    drawn += 16;
    return pool + drawn - 16;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s FIELDS (fields.py's output)\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror(argv[1]); return 1; }
    size_t cap = 1 << 27;
    char *all = malloc(cap + 1);
    size_t len = fread(all, 1, cap, f);
    all[len] = 0;
    fclose(f);
    int lines = 0, max = 1 << 21;
    char **line = malloc(sizeof(char *) * max);
    for (char *p = all; *p && lines < max;) {
        line[lines++] = p;
        char *e = strchr(p, '\n');
        if (!e) break;
        *e = 0;
        p = e + 1;
    }
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_CIPHER *aes = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
    EVP_CIPHER_CTX *cctx = EVP_CIPHER_CTX_new();
    if (!md || !mctx || !aes || !cctx) { fprintf(stderr, "OpenSSL: no SHA-256 or AES-256-CTR\n"); return 1; }
    unsigned char row[8192], sealed[8192], buf[4096], digest[32];
    char text[64];
    unsigned long sink = 0;
    for (int pass = 0; pass < 2; pass++) {
        long values = 0, rows = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < lines; i++) {
            for (char *p = strchr(line[i], 1); p;) {
                char *subject = p + 1, *field = strchr(subject, 2), *next = strchr(subject, 1);
                if (!field) break;
                struct key *k = lookup(subject, (size_t)(field - subject));
                unsigned char *iv = random16();
                unsigned char *nonce = random16();
                size_t n = 0, framed = 17, fields = 0;
                const char *single = NULL;
                size_t singleLen = 0;
                rows++;
                buf[0] = 2;
                memcpy(buf + 1, nonce, 16);
                while (field && (!next || field < next)) {
                    char *path = field + 1, *eq = strchr(path, 3);
                    if (!eq) break;
                    char *value = eq + 1, *end = value + strcspn(value, "\x01\x02");
                    size_t pl = (size_t)(eq - path), vl = (size_t)(end - value);
                    if (framed + pl + vl + 3 > sizeof buf || n + pl + vl + 19 > sizeof row) { fprintf(stderr, "row too long\n"); return 1; }
                    buf[framed++] = (unsigned char)pl;
                    memcpy(buf + framed, path, pl); framed += pl;
                    buf[framed++] = vl & 255; buf[framed++] = (unsigned char)(vl >> 8);
                    memcpy(buf + framed, value, vl); framed += vl;
                    single = value; singleLen = vl;
                    fields++;
                    values++;
                    row[n++] = (unsigned char)pl;
                    memcpy(row + n, path, pl); n += pl;
                    memcpy(row + n, nonce, 16); n += 16;
                    row[n++] = vl & 255; row[n++] = (unsigned char)(vl >> 8);
                    memcpy(row + n, value, vl); n += vl;
                    field = *end == 2 ? end : NULL;
                }
                if (fields == 1) {
                    buf[0] = 0;
                    memcpy(buf + 17, single, singleLen);
                    framed = 17 + singleLen;
                }
                unsigned int dl;
                EVP_DigestInit_ex2(mctx, md, NULL);
                EVP_DigestUpdate(mctx, buf, framed);
                EVP_DigestFinal_ex(mctx, digest, &dl);
                sink += base64url(digest, 32, text);
                int out;
                if (EVP_EncryptInit_ex2(cctx, aes, k->secret, iv, NULL) != 1
                    || EVP_EncryptUpdate(cctx, sealed, &out, row, (int)n) != 1) { fprintf(stderr, "AES failed\n"); return 1; }
                sink += sealed[0];
                p = next;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        printf("%s: %d entries, %ld committed values, %ld rows: %.0f ns an entry\n",
               pass == 0 ? "keys made" : "keys found", lines, values, rows, ns / lines);
    }
    volatile unsigned long keep = sink; // so that none of the work is optimised away
    (void)keep;
    return 0;
}
